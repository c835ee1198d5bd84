"""Krum and Multi-Krum: keep the rows closest to their neighbours.

Each usable row is scored by the sum of squared distances to its
``k - f - 2`` nearest other usable rows (``k`` usable rows, ``f`` assumed
adversarial); Krum returns the row of lowest score and Multi-Krum the mean of
the ``num_selected`` rows of lowest scores (scores computed once, not
recomputed after each selection). Rows with a non-finite entry are dropped.
The guarantee needs ``n > 2 f + 2``.

References:
  Blanchard, El Mhamdi, Guerraoui and Stainer, "Machine Learning with
  Adversaries: Byzantine Tolerant Gradient Descent", NeurIPS 2017.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from farsign_jax._src.aggregators.coordinate import usable_rows


def pairwise_squared_distances(messages: jax.Array) -> jax.Array:
  """``[n, n]`` squared Euclidean distances, from the Gram matrix.

  Entries that overflow to NaN (huge finite rows) read as ``+inf``.
  """
  norms = jnp.sum(messages**2, axis=1)
  gram = messages @ messages.T
  distances = jnp.maximum(norms[:, None] + norms[None, :] - 2 * gram, 0.0)
  return jnp.where(jnp.isnan(distances), jnp.inf, distances)


def krum_scores(
  messages: jax.Array, valid: jax.Array, num_byzantine: int
) -> jax.Array:
  """Krum score of every row; ``+inf`` for unusable rows.

  Args:
    messages: ``[n, m]`` messages.
    valid: ``[n]`` bool, the rows that were received.
    num_byzantine: ``f``, the adversarial rows assumed.

  Returns:
    ``[n]`` the sum of squared distances of each usable row to its
    ``max(k - f - 2, 1)`` nearest other usable rows.
  """
  usable = usable_rows(messages, valid)
  safe = jnp.where(usable[:, None], messages, jnp.zeros_like(messages))
  distances = pairwise_squared_distances(safe)
  n = messages.shape[0]
  pair = usable[:, None] & usable[None, :] & ~jnp.eye(n, dtype=bool)
  distances = jnp.sort(jnp.where(pair, distances, jnp.inf), axis=1)
  neighbours = jnp.maximum(usable.sum() - num_byzantine - 2, 1)
  nearest = jnp.arange(n)[None, :] < neighbours
  scores = jnp.where(nearest, distances, 0.0).sum(1)
  return jnp.where(usable, scores, jnp.inf)


def krum(
  messages: jax.Array, valid: jax.Array, num_byzantine: int
) -> jax.Array:
  """The usable row of lowest Krum score; zeros when no row is usable.

  Args:
    messages: ``[n, m]`` messages.
    valid: ``[n]`` bool, the rows that were received.
    num_byzantine: ``f``, the adversarial rows assumed.

  Returns:
    ``[m]`` the selected row.
  """
  return multi_krum(messages, valid, num_byzantine, 1)


def multi_krum(
  messages: jax.Array,
  valid: jax.Array,
  num_byzantine: int,
  num_selected: int,
) -> jax.Array:
  """Mean of the ``num_selected`` usable rows of lowest Krum score.

  Args:
    messages: ``[n, m]`` messages.
    valid: ``[n]`` bool, the rows that were received.
    num_byzantine: ``f``, the adversarial rows assumed.
    num_selected: ``m``, rows averaged (fewer if fewer rows are usable).

  Returns:
    ``[m]`` the mean of the selected rows; zeros when no row is usable.
  """
  scores = krum_scores(messages, valid, num_byzantine)
  rank = jnp.argsort(jnp.argsort(scores))
  selected = (rank < num_selected) & jnp.isfinite(scores)
  safe = jnp.where(selected[:, None], messages, jnp.zeros_like(messages))
  count = jnp.maximum(selected.sum(), 1).astype(messages.dtype)
  return safe.sum(0) / count
