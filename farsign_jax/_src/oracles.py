"""Worker oracles: directional derivative measurements of a minibatch loss.

An honest worker holds (possibly stale) parameters ``x`` and a minibatch, and
measures ``k`` directional derivatives of the minibatch loss ``F(x; xi)``
along the unit directions of a :class:`~farsign_jax.DirectionDesign`:

* first order: ``y_j = <grad F(x; xi), u_j>``;
* zeroth order: ``y_j = [F(x + mu u_j; xi) - F(x - mu u_j; xi)] / (2 mu)``,
  both evaluations on the same minibatch. For a loss with bounded third
  derivative the error is ``O(mu^2)``.

All functions here act on flat parameter vectors and are pure, so they can be
``jax.vmap``-ped over workers.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from farsign_jax._src.directions import DirectionDesign

ORACLES = ('first_order', 'zeroth_order')

# With this many directions or fewer, k forward-mode products are cheaper
# than one reverse-mode gradient (which costs about three forward passes).
_JVP_MAX_DIRECTIONS = 2


def first_order(
  loss: Callable[[jax.Array], jax.Array],
  params: jax.Array,
  design: DirectionDesign,
  key: jax.Array,
) -> jax.Array:
  """Projections of the gradient of ``loss`` at ``params`` on the directions.

  Uses ``k`` Jacobian-vector products when ``k`` is tiny and one gradient
  followed by a projection otherwise.

  Args:
    loss: scalar function of the flat parameters (the minibatch is closed
      over).
    params: flat parameter vector ``[d]``.
    design: the direction design.
    key: the message key of the directions.

  Returns:
    The ``[k]`` measurements.
  """
  if (
    design.name != 'coordinate'
    and design.num_directions <= _JVP_MAX_DIRECTIONS
  ):
    directions = design.directions(key).astype(params.dtype)
    jvp = lambda u: jax.jvp(loss, (params,), (u,))[1]  # noqa: E731
    return jax.vmap(jvp)(directions)
  return design.project(key, jax.grad(loss)(params))


def zeroth_order(
  loss: Callable[[jax.Array], jax.Array],
  params: jax.Array,
  design: DirectionDesign,
  key: jax.Array,
  smoothing: float,
) -> jax.Array:
  """Two-point finite differences of ``loss`` along the directions.

  Args:
    loss: scalar function of the flat parameters (the minibatch is closed
      over, so both evaluations see the same data).
    params: flat parameter vector ``[d]``.
    design: the direction design. ``'coordinate'`` costs ``2 d`` loss
      evaluations per message.
    key: the message key of the directions.
    smoothing: the radius ``mu > 0``.

  Returns:
    The ``[k]`` measurements.
  """

  def difference(u):
    plus = loss(params + smoothing * u)
    minus = loss(params - smoothing * u)
    return (plus - minus) / (2.0 * smoothing)

  if design.name == 'coordinate':
    # One unit vector at a time: the d x d identity is never built.
    def along_coordinate(i):
      return difference(jax.nn.one_hot(i, design.dim, dtype=params.dtype))

    return jax.lax.map(along_coordinate, jnp.arange(design.dim), batch_size=64)
  directions = design.directions(key).astype(params.dtype)
  return jax.lax.map(difference, directions, batch_size=64)


def make_oracle(
  name: str, design: DirectionDesign, smoothing: float = 1e-3
) -> Callable[[Callable, jax.Array, jax.Array], jax.Array]:
  """Returns ``measure(loss, params, key) -> [k]`` for a named oracle.

  Args:
    name: ``'first_order'`` or ``'zeroth_order'``.
    design: the direction design.
    smoothing: ``mu`` of the zeroth-order oracle; ignored for first order.

  Raises:
    ValueError: for an unknown name or a non-positive ``smoothing``.
  """
  if name not in ORACLES:
    raise ValueError(
      f'Unknown oracle `oracle={name!r}`; known oracles: {", ".join(ORACLES)}.'
    )
  if name == 'first_order':
    return lambda loss, params, key: first_order(loss, params, design, key)
  if not 0 < smoothing < float('inf'):
    raise ValueError(
      '`smoothing` (mu) must be a positive finite number, got '
      f'{smoothing!r}.'
    )
  return lambda loss, params, key: zeroth_order(
    loss, params, design, key, smoothing
  )
