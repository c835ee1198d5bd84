"""Synchronous rounds with a robust aggregation rule.

The server waits for a round of gradients (all live workers, or a quorum),
aggregates them with one rule of :mod:`farsign_jax._src.aggregators` and
takes one step ``x <- x - alpha_t * aggregate``. With ``sign_vote`` the
aggregate is the majority of the gradients' signs, which is signSGD with
majority vote.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from farsign_jax._src.aggregators import make_aggregator
from farsign_jax._src.methods.base import Method


class SynchronousState(NamedTuple):
  """Server state of a synchronous method.

  Attributes:
    count: rounds applied.
    params: the flat parameters.
    previous: the last round's aggregate (centered clipping's center).
  """

  count: jax.Array
  params: jax.Array
  previous: jax.Array


def synchronous_method(
  aggregator: str,
  dim: int,
  learning_rate: optax.ScalarOrSchedule,
  num_workers: int,
  num_byzantine: int,
  quorum: int | None = None,
  **options,
) -> Method:
  """Synchronous SGD whose rounds are aggregated by rule ``aggregator``.

  Args:
    aggregator: a rule name of :data:`~farsign_jax._src.aggregators.
      AGGREGATORS`.
    dim: number of parameters ``d``.
    learning_rate: ``alpha``, a number or an optax schedule of the round
      count.
    num_workers: ``n``, the workers of a round.
    num_byzantine: ``f``, the adversarial workers the rule must tolerate.
    quorum: arrivals a round waits for; ``None`` waits for every live
      worker. The rule's breakdown condition is checked on the quorum.
    **options: options of the rule (see ``make_aggregator``).

  Returns:
    A synchronous :class:`Method` named ``'sync_' + aggregator``.

  Raises:
    ValueError: for a quorum outside ``[1, num_workers]``, or if ``f``
      adversarial rows among the quorum break the rule.

  Example:
    >>> method = synchronous_method('median', 7850, 0.5, 100, 20)
    >>> method.synchronous
    True
  """
  if quorum is not None and (
    isinstance(quorum, bool)
    or not isinstance(quorum, int)
    or not 1 <= quorum <= num_workers
  ):
    raise ValueError(
      f'`quorum={quorum!r}` must be an integer in [1, num_workers='
      f'{num_workers}] or None.'
    )
  rows = num_workers if quorum is None else quorum
  aggregate = make_aggregator(aggregator, rows, num_byzantine, **options)
  rate = learning_rate if callable(learning_rate) else (
    lambda count: learning_rate
  )

  def init(params):
    return SynchronousState(
      jnp.zeros([], jnp.int32), params, jnp.zeros_like(params)
    )

  def apply_round(state, messages, valid):
    update = aggregate(messages, valid, state.previous)
    alpha = jnp.asarray(rate(state.count), state.params.dtype)
    return SynchronousState(
      optax.safe_increment(state.count),
      state.params - alpha * update,
      update,
    )

  return Method(
    name=f'sync_{aggregator}',
    message_size=dim,
    init=init,
    params=lambda state: state.params,
    message=lambda loss, params, message_id: jax.grad(loss)(params),
    apply_round=apply_round,
    quorum=quorum,
    max_byzantine_fraction=None if aggregator == 'mean' else 0.5,
    description=f'synchronous rounds, {aggregator.replace("_", " ")}',
  )
