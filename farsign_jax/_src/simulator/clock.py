"""Compute-time models of the virtual clock.

A worker's ``j``-th job (read the parameters, compute, send) takes a time
drawn from ``fold_in(fold_in(key, worker), j)``. Because the draw depends on
the worker and its job index only, the event schedule is the same whatever
the tick size and whichever backend runs it.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

COMPUTE_TIMES = ('exponential', 'lognormal', 'fixed')


@dataclasses.dataclass(frozen=True)
class ComputeTimeModel:
  """Distribution of one job's duration, in virtual seconds.

  Attributes:
    kind: ``'exponential'``, ``'lognormal'`` or ``'fixed'``.
    mean: the mean duration of a normal-speed worker's job.
    sigma: the log-space standard deviation of ``'lognormal'``.
  """

  kind: str = 'exponential'
  mean: float = 1.0
  sigma: float = 0.5

  def __post_init__(self):
    if self.kind not in COMPUTE_TIMES:
      raise ValueError(
        f'Unknown compute-time model `compute_time={self.kind!r}`; known '
        f'models: {", ".join(COMPUTE_TIMES)}.'
      )
    if not 0 < self.mean < float('inf'):
      raise ValueError(
        f'`mean` compute time must be positive and finite, got {self.mean!r}.'
      )
    if not 0 < self.sigma < float('inf'):
      raise ValueError(
        f'`sigma` must be positive and finite, got {self.sigma!r}.'
      )

  def sample(self, key: jax.Array, worker, job, slowdown) -> jax.Array:
    """Duration of ``worker``'s job number ``job``, times its ``slowdown``."""
    key = jax.random.fold_in(jax.random.fold_in(key, worker), job)
    if self.kind == 'exponential':
      base = self.mean * jax.random.exponential(key, (), jnp.float32)
    elif self.kind == 'lognormal':
      # Shifted so that the mean is `mean`.
      mu = jnp.log(self.mean) - 0.5 * self.sigma**2
      base = jnp.exp(mu + self.sigma * jax.random.normal(key, (), jnp.float32))
    else:
      base = jnp.float32(self.mean)
    return base * slowdown
