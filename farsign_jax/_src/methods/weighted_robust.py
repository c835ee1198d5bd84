"""Weighted robust aggregation of the latest update of every worker.

The server keeps the latest gradient of each worker and how many gradients
each worker has sent. On every arrival it replaces the sender's row and
steps with a *weighted* robust aggregate of the rows, the weight of a worker
being its share of the arrivals so far (its arrival frequency): a fast
worker's row is fresher and counts more, a straggler's stale row counts
less, and adversaries weigh by the messages they actually send. The rule is
the weighted coordinate-wise median (default) or the weighted geometric
median. The guarantee needs the adversaries' weight below one half; the
constructor checks ``2 f < n``. Rows with a non-finite entry are dropped.

References:
  Dahan and Levy, "Weight for Robustness: A Comprehensive Approach towards
  Optimal Fault-Tolerant Asynchronous ML", NeurIPS 2024, arXiv:2501.09621.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from farsign_jax._src.aggregators import (
  check_breakdown,
  geometric_median,
  weighted_coordinate_median,
)
from farsign_jax._src.methods.base import Method

RULES = ('median', 'geometric_median')


class WeightedRobustState(NamedTuple):
  """Server state of the weighted robust method.

  Attributes:
    count: steps taken (one per arrival).
    params: the flat parameters.
    latest: ``[N, d]`` each worker's latest gradient.
    arrivals: ``[N]`` gradients received from each worker.
  """

  count: jax.Array
  params: jax.Array
  latest: jax.Array
  arrivals: jax.Array


def weighted_robust_method(
  dim: int,
  learning_rate: optax.ScalarOrSchedule,
  num_workers: int,
  num_byzantine: int,
  aggregator: str = 'median',
) -> Method:
  """Steps on a frequency-weighted robust aggregate of the latest updates.

  Args:
    dim: number of parameters ``d``.
    learning_rate: ``alpha``, a number or an optax schedule.
    num_workers: ``n``, rows kept.
    num_byzantine: ``f``, adversarial workers to tolerate.
    aggregator: ``'median'`` (weighted coordinate-wise median) or
      ``'geometric_median'`` (weighted Weiszfeld).

  Returns:
    An asynchronous :class:`Method` that uses the sender's id.

  Raises:
    ValueError: for an unknown rule or ``2 f >= n``.

  Example:
    >>> method = weighted_robust_method(7850, 0.3, 100, 20)
    >>> method.uses_worker
    True
  """
  if aggregator not in RULES:
    raise ValueError(
      f'Unknown rule `aggregator={aggregator!r}`; known: {", ".join(RULES)}.'
    )
  check_breakdown(aggregator, num_workers, num_byzantine)
  rule = (
    weighted_coordinate_median
    if aggregator == 'median'
    else lambda rows, valid, weights: geometric_median(rows, valid, weights)
  )
  rate = learning_rate if callable(learning_rate) else (
    lambda count: learning_rate
  )

  def init(params):
    return WeightedRobustState(
      jnp.zeros([], jnp.int32),
      params,
      jnp.zeros((num_workers,) + params.shape, params.dtype),
      jnp.zeros(num_workers, jnp.int32),
    )

  def apply(state, gradient, message_id, staleness, worker):
    del message_id, staleness
    latest = state.latest.at[worker].set(gradient)
    arrivals = state.arrivals.at[worker].add(1)
    weights = arrivals.astype(gradient.dtype) / arrivals.sum()
    update = rule(latest, arrivals > 0, weights)
    alpha = jnp.asarray(rate(state.count), state.params.dtype)
    return WeightedRobustState(
      optax.safe_increment(state.count),
      state.params - alpha * update,
      latest,
      arrivals,
    )

  return Method(
    name='weighted_robust',
    message_size=dim,
    init=init,
    params=lambda state: state.params,
    message=lambda loss, params, message_id: jax.grad(loss)(params),
    apply=apply,
    max_byzantine_fraction=0.5,
    description=f'latest update per worker, frequency-weighted {aggregator}',
    uses_worker=True,
  )
