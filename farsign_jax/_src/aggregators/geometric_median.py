"""The (weighted) geometric median by Weiszfeld's iteration.

The geometric median ``argmin_z sum_i w_i ||x_i - z||`` stays within a
bounded distance of the honest rows while the adversarial weight is below
half (``2 f < n`` for equal weights). Weiszfeld's fixed point iteration
``z <- sum_i (w_i / d_i) x_i / sum_i (w_i / d_i)``, ``d_i = max(||x_i - z||,
smoothing)``, starts from the weighted coordinate-wise median and stops once
a step moves ``z`` by at most ``tolerance * max(||z||, 1)`` or after
``max_iterations`` steps. Rows with a non-finite entry are dropped.

References:
  Weiszfeld, "Sur le point pour lequel la somme des distances de n points
  donnés est minimum", Tohoku Mathematical Journal, 1937; Pillutla, Kakade
  and Harchaoui, "Robust Aggregation for Federated Learning", IEEE TSP 2022,
  arXiv:1912.13445.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from farsign_jax._src.aggregators.coordinate import (
  usable_rows,
)

DEFAULT_TOLERANCE = 1e-6
DEFAULT_MAX_ITERATIONS = 100
DEFAULT_SMOOTHING = 1e-8


def weighted_coordinate_median(
  messages: jax.Array, valid: jax.Array, weights: jax.Array
) -> jax.Array:
  """Per coordinate, the smallest value whose cumulative weight reaches half.

  Args:
    messages: ``[n, m]`` messages.
    valid: ``[n]`` bool, the rows that were received.
    weights: ``[n]`` non-negative weights.

  Returns:
    ``[m]`` the weighted (lower) median; zeros when no row is usable.
  """
  usable = usable_rows(messages, valid)
  weights = jnp.where(usable, weights, 0.0).astype(messages.dtype)
  filled = jnp.where(usable[:, None], messages, jnp.inf)
  order = jnp.argsort(filled, axis=0)
  ordered = jnp.take_along_axis(filled, order, axis=0)
  cumulative = jnp.cumsum(weights[order], axis=0)
  total = weights.sum()
  first = jnp.argmax(cumulative >= 0.5 * total, axis=0)
  median = jnp.take_along_axis(ordered, first[None], axis=0)[0]
  return jnp.where(total > 0, median, jnp.zeros_like(median))


def geometric_median(
  messages: jax.Array,
  valid: jax.Array,
  weights: jax.Array | None = None,
  tolerance: float = DEFAULT_TOLERANCE,
  max_iterations: int = DEFAULT_MAX_ITERATIONS,
  smoothing: float = DEFAULT_SMOOTHING,
) -> jax.Array:
  """Weighted geometric median of the usable rows (Weiszfeld).

  Args:
    messages: ``[n, m]`` messages.
    valid: ``[n]`` bool, the rows that were received.
    weights: ``[n]`` non-negative weights; equal weights by default.
    tolerance: relative step size at which the iteration stops.
    max_iterations: the most Weiszfeld steps.
    smoothing: the floor on distances, which keeps a step defined when
      ``z`` sits on a row.

  Returns:
    ``[m]`` the geometric median; zeros when no row is usable.
  """
  usable = usable_rows(messages, valid)
  if weights is None:
    weights = jnp.ones(messages.shape[:1], messages.dtype)
  weights = jnp.where(usable, weights, 0.0).astype(messages.dtype)
  safe = jnp.where(usable[:, None], messages, jnp.zeros_like(messages))
  start = weighted_coordinate_median(messages, valid, weights)

  def step(z):
    distances = jnp.maximum(jnp.linalg.norm(safe - z, axis=1), smoothing)
    coefficients = weights / distances
    total = jnp.maximum(coefficients.sum(), jnp.finfo(messages.dtype).tiny)
    return coefficients @ safe / total

  def more(carry):
    _, change, iteration = carry
    return (change > 0) & (iteration < max_iterations)

  def body(carry):
    z, _, iteration = carry
    new = step(z)
    moved = jnp.linalg.norm(new - z)
    scale = jnp.maximum(jnp.linalg.norm(z), 1.0)
    change = jnp.where(moved > tolerance * scale, moved, 0.0)
    return new, change, iteration + 1

  z, _, _ = jax.lax.while_loop(
    more, body, (start, jnp.ones([], messages.dtype), jnp.int32(0))
  )
  return jnp.where(weights.sum() > 0, z, jnp.zeros_like(z))
