"""Coordinate-wise aggregation: mean, median and trimmed mean.

Every aggregator of this package takes the messages of one round (or one
buffer) as ``[n, m]`` rows and a ``[n]`` mask of the rows that are real, and
returns one ``[m]`` vector. A row with any non-finite entry counts as invalid
(it is dropped, never clamped), so NaN and ``inf`` never reach an output.

References:
  Yin, Chen, Ramchandran and Bartlett, "Byzantine-Robust Distributed
  Learning: Towards Optimal Statistical Rates", ICML 2018, arXiv:1803.01498.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def usable_rows(messages: jax.Array, valid: jax.Array) -> jax.Array:
  """``valid`` rows whose entries are all finite.

  Args:
    messages: ``[n, m]`` messages.
    valid: ``[n]`` bool, the rows that were received.

  Returns:
    ``[n]`` bool, the rows an aggregator may read.
  """
  return valid & jnp.all(jnp.isfinite(messages), axis=1)


def _zeroed(messages, usable):
  return jnp.where(usable[:, None], messages, jnp.zeros_like(messages))


def mean(messages: jax.Array, valid: jax.Array) -> jax.Array:
  """Mean of the usable rows; zeros when there is none.

  Breakdown point 0: one large finite row moves the mean arbitrarily far.
  Non-finite rows are dropped.

  Args:
    messages: ``[n, m]`` messages.
    valid: ``[n]`` bool, the rows that were received.

  Returns:
    ``[m]`` the mean.
  """
  usable = usable_rows(messages, valid)
  count = jnp.maximum(usable.sum(), 1).astype(messages.dtype)
  return _zeroed(messages, usable).sum(0) / count


def _sorted_columns(messages, usable):
  """Each column sorted with unusable rows last (as ``+inf``)."""
  filled = jnp.where(usable[:, None], messages, jnp.inf)
  return jnp.sort(filled, axis=0), usable.sum()


def coordinate_median(messages: jax.Array, valid: jax.Array) -> jax.Array:
  """Coordinate-wise median of the usable rows; zeros when there is none.

  With ``k`` usable rows the median of each coordinate is the average of its
  two middle values when ``k`` is even. It stays within the range of the
  honest values while fewer than half of the rows are adversarial
  (``2 f < n``).

  Args:
    messages: ``[n, m]`` messages.
    valid: ``[n]`` bool, the rows that were received.

  Returns:
    ``[m]`` the coordinate-wise median.
  """
  ordered, count = _sorted_columns(messages, usable_rows(messages, valid))
  low = jnp.maximum((count - 1) // 2, 0)
  high = jnp.maximum(count // 2, 0)
  median = 0.5 * (ordered[low] + ordered[high])
  return jnp.where(count > 0, median, jnp.zeros_like(median))


def trimmed_mean(
  messages: jax.Array, valid: jax.Array, num_trimmed: int
) -> jax.Array:
  """Coordinate-wise mean after dropping the ``b`` largest and smallest.

  With ``k`` usable rows, ``b = min(num_trimmed, (k - 1) // 2)`` values are
  dropped at each end of every coordinate, so at least one value is kept
  even when fewer rows arrive than expected. Robust while ``2 f < n`` with
  ``num_trimmed >= f``.

  Args:
    messages: ``[n, m]`` messages.
    valid: ``[n]`` bool, the rows that were received.
    num_trimmed: ``b``, values dropped at each end of every coordinate.

  Returns:
    ``[m]`` the trimmed mean; zeros when no row is usable.
  """
  ordered, count = _sorted_columns(messages, usable_rows(messages, valid))
  trim = jnp.minimum(num_trimmed, jnp.maximum((count - 1) // 2, 0))
  rank = jnp.arange(messages.shape[0])[:, None]
  keep = (rank >= trim) & (rank < count - trim)
  kept = jnp.maximum(count - 2 * trim, 1).astype(messages.dtype)
  total = jnp.where(keep, ordered, jnp.zeros_like(ordered)).sum(0)
  return total / kept
