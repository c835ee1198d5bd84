"""Centered clipping: average the rows' offsets from a center, clipped.

Starting from a center ``v`` (the previous round's aggregate, so that the
rule remembers history), each of ``iterations`` steps sets
``v <- v + mean_i clip(x_i - v, radius)`` with ``clip(z, r) = z min(1,
r / ||z||)``. An adversarial row moves ``v`` by at most ``radius / k`` per
step, whatever it carries. Robust while ``2 f < n``. Rows with a non-finite
entry are dropped.

References:
  Karimireddy, He and Jaggi, "Learning from History for Byzantine Robust
  Optimization", ICML 2021, arXiv:2012.10333.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from farsign_jax._src.aggregators.coordinate import usable_rows


def centered_clipping(
  messages: jax.Array,
  valid: jax.Array,
  center: jax.Array | None = None,
  radius: float = 1.0,
  iterations: int = 3,
) -> jax.Array:
  """Centered clipping of the usable rows around ``center``.

  Args:
    messages: ``[n, m]`` messages.
    valid: ``[n]`` bool, the rows that were received.
    center: ``[m]`` the starting center; zeros by default.
    radius: the clipping radius ``tau``.
    iterations: number of clipping steps ``L``.

  Returns:
    ``[m]`` the aggregate; ``center`` when no row is usable.
  """
  usable = usable_rows(messages, valid)
  safe = jnp.where(usable[:, None], messages, jnp.zeros_like(messages))
  if center is None:
    center = jnp.zeros(messages.shape[1:], messages.dtype)
  center = jnp.where(jnp.isfinite(center), center, 0.0)
  count = jnp.maximum(usable.sum(), 1).astype(messages.dtype)

  def step(v, _):
    offsets = safe - v
    norms = jnp.linalg.norm(offsets, axis=1)
    scale = jnp.minimum(1.0, radius / jnp.maximum(norms, 1e-30))
    scale = jnp.where(usable, scale, 0.0)
    return v + (scale[:, None] * offsets).sum(0) / count, None

  center, _ = jax.lax.scan(step, center, None, length=iterations)
  return center
