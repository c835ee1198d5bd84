"""BASGD: buffered asynchronous SGD with robust aggregation of buffers.

The server keeps ``B`` buffers. A gradient from worker ``w`` is added to
buffer ``w mod B``; once every buffer holds at least one gradient, the
server aggregates the ``B`` buffer means with a robust rule, takes one step
``x <- x - alpha_t * aggregate`` and empties the buffers. ``f`` adversarial
workers can spoil at most ``f`` buffers, so the rule must tolerate ``f``
rows among ``B`` (``B >= 2 f + 1`` for the median). A non-finite gradient
spoils its buffer's mean, which the rule then drops.

References:
  Yang and Li, "Buffered Asynchronous SGD for Byzantine Learning", ICML 2021
  (also known as BASGD), arXiv:2003.00937.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from farsign_jax._src.aggregators import make_aggregator
from farsign_jax._src.methods.base import Method


class BasgdState(NamedTuple):
  """Server state of BASGD.

  Attributes:
    count: steps taken (buffer flushes).
    params: the flat parameters.
    sums: ``[B, d]`` sum of the gradients in each buffer.
    counts: ``[B]`` gradients in each buffer.
  """

  count: jax.Array
  params: jax.Array
  sums: jax.Array
  counts: jax.Array


def basgd_method(
  dim: int,
  learning_rate: optax.ScalarOrSchedule,
  num_byzantine: int,
  num_buffers: int | None = None,
  aggregator: str = 'median',
  **options,
) -> Method:
  """BASGD with ``num_buffers`` buffers and rule ``aggregator``.

  Args:
    dim: number of parameters ``d``.
    learning_rate: ``alpha``, a number or an optax schedule of the steps.
    num_byzantine: ``f``, adversarial workers to tolerate.
    num_buffers: ``B``; ``2 f + 1`` by default.
    aggregator: the rule applied to the buffer means.
    **options: options of the rule.

  Returns:
    An asynchronous :class:`Method` that uses the sender's id.

  Raises:
    ValueError: if ``num_buffers`` is not a positive integer or the rule
      cannot tolerate ``f`` spoilt buffers among ``B``.

  Example:
    >>> method = basgd_method(7850, 0.5, num_byzantine=20)
    >>> method.uses_worker
    True
  """
  if num_buffers is None:
    num_buffers = 2 * num_byzantine + 1
  if (
    isinstance(num_buffers, bool)
    or not isinstance(num_buffers, int)
    or num_buffers < 1
  ):
    raise ValueError(
      f'`num_buffers` must be a positive integer, got {num_buffers!r}.'
    )
  aggregate = make_aggregator(aggregator, num_buffers, num_byzantine, **options)
  rate = learning_rate if callable(learning_rate) else (
    lambda count: learning_rate
  )
  every = jnp.ones(num_buffers, bool)

  def init(params):
    return BasgdState(
      jnp.zeros([], jnp.int32),
      params,
      jnp.zeros((num_buffers,) + params.shape, params.dtype),
      jnp.zeros(num_buffers, jnp.int32),
    )

  def flush(state):
    means = state.sums / jnp.maximum(state.counts, 1)[:, None]
    update = aggregate(means, every)
    alpha = jnp.asarray(rate(state.count), state.params.dtype)
    return BasgdState(
      optax.safe_increment(state.count),
      state.params - alpha * update,
      jnp.zeros_like(state.sums),
      jnp.zeros_like(state.counts),
    )

  def apply(state, gradient, message_id, staleness, worker):
    del message_id, staleness
    buffer = worker % num_buffers
    state = state._replace(
      sums=state.sums.at[buffer].add(gradient),
      counts=state.counts.at[buffer].add(1),
    )
    return jax.lax.cond(
      jnp.all(state.counts > 0), flush, lambda s: s, state
    )

  return Method(
    name='basgd',
    message_size=dim,
    init=init,
    params=lambda state: state.params,
    message=lambda loss, params, message_id: jax.grad(loss)(params),
    apply=apply,
    max_byzantine_fraction=0.5,
    description=f'BASGD, {num_buffers} buffers, {aggregator}',
    uses_worker=True,
  )
