"""signSGD with majority vote: the sign of the sum of the rows' signs.

Each row is reduced to its signs, so any row, however large, has one vote
per coordinate; the output is ``sign(sum_i sign(x_i))`` in ``{-1, 0, 1}``.
The majority is honest while ``2 f < n``. Rows with a non-finite entry are
dropped (they cast no vote).

References:
  Bernstein, Zhao, Azizzadenesheli and Anandkumar, "signSGD with Majority
  Vote is Communication Efficient and Fault Tolerant", ICLR 2019,
  arXiv:1810.05291.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from farsign_jax._src.aggregators.coordinate import usable_rows


def majority_vote(messages: jax.Array, valid: jax.Array) -> jax.Array:
  """Coordinate-wise majority of the usable rows' signs.

  Args:
    messages: ``[n, m]`` messages (gradients or their signs).
    valid: ``[n]`` bool, the rows that were received.

  Returns:
    ``[m]`` the vote in ``{-1, 0, 1}``; zeros when no row is usable.
  """
  usable = usable_rows(messages, valid)
  votes = jnp.where(usable[:, None], jnp.sign(messages), 0.0)
  return jnp.sign(votes.sum(0)).astype(messages.dtype)
