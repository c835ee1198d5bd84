"""Direction designs: the directions along which workers measure derivatives.

A message of FAR-SIGN carries ``k`` scalars ``y_j ≈ <grad f(x), u_j>``. The
directions ``u_1 … u_k`` are never sent: both sides regenerate them from the
run's key and the message id, so a message is ``k`` numbers and an integer.

Scaling. Every design returns unit-norm directions, ``||u_j|| = 1``. The fast
step of the server moves the tracker by ``beta * sum_j sign(r_j) u_j``, so
with unit directions ``beta`` is a step length per direction and one
``(learning_rate, tracking_rate)`` pair means the same thing for every design,
every ``k`` and every model size. The random designs are isotropic:
``E[u u^T] = I / d`` for a single direction, where ``d`` is the number of
parameters.

A design is a small object with two operations on flat parameter vectors:

* ``project(key, v) -> [k]``: the inner products ``<u_j, v>``;
* ``expand(key, c) -> [d]``: the combination ``sum_j c_j u_j``.

Neither materialises a ``d x d`` matrix for the ``coordinate`` design, and the
random designs build their ``k x d`` directions once per call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

DESIGNS = (
  'coordinate',
  'coordinate_subset',
  'gaussian',
  'rademacher',
  'orthogonal',
)


@dataclasses.dataclass(frozen=True)
class DirectionDesign:
  """A rule that turns ``(key, message id)`` into ``k`` unit directions.

  Attributes:
    name: one of :data:`DESIGNS`.
    dim: the number of parameters ``d``.
    num_directions: ``k``, the number of scalars in a message.
  """

  name: str
  dim: int
  num_directions: int
  _make: Callable[[jax.Array], jax.Array] | None = None

  def message_key(self, key: jax.Array, message_id) -> jax.Array:
    """The key from which message ``message_id``'s directions are drawn."""
    return jax.random.fold_in(key, message_id)

  def directions(self, key: jax.Array) -> jax.Array:
    """The ``[k, d]`` matrix of unit directions for a message key.

    For ``coordinate`` this is the identity and should be avoided for large
    ``d``; :meth:`project` and :meth:`expand` never build it.
    """
    if self.name == 'coordinate':
      return jnp.eye(self.dim, dtype=jnp.float32)
    if self.name == 'coordinate_subset':
      return jax.nn.one_hot(self._coordinates(key), self.dim)
    return self._make(key)

  def bind(self, key: jax.Array):
    """``(project, expand)`` for one message, its directions drawn once.

    ``project(v)`` gives the ``[k]`` inner products ``<u_j, v>`` and
    ``expand(c)`` the vector ``sum_j c_j u_j``. Use this when both are
    needed for the same message, as the server step does.
    """
    if self.name == 'coordinate':
      return (lambda vector: vector), (lambda coefficients: coefficients)
    if self.name == 'coordinate_subset':
      index = self._coordinates(key)

      def scatter(coefficients):
        zeros = jnp.zeros((self.dim,), coefficients.dtype)
        return zeros.at[index].add(coefficients)

      return (lambda vector: vector[index]), scatter
    u = self._make(key)
    return (
      lambda vector: u.astype(vector.dtype) @ vector,
      lambda coefficients: coefficients @ u.astype(coefficients.dtype),
    )

  def project(self, key: jax.Array, vector: jax.Array) -> jax.Array:
    """Inner products ``<u_j, vector>`` for ``j = 1..k``."""
    return self.bind(key)[0](vector)

  def expand(self, key: jax.Array, coefficients: jax.Array) -> jax.Array:
    """The vector ``sum_j coefficients_j u_j`` of length ``d``."""
    return self.bind(key)[1](coefficients)

  def _coordinates(self, key: jax.Array) -> jax.Array:
    return jax.random.choice(
      key, self.dim, (self.num_directions,), replace=False
    )


def _gaussian(key, k, d):
  z = jax.random.normal(key, (k, d), jnp.float32)
  return z / jnp.linalg.norm(z, axis=1, keepdims=True)


def _rademacher(key, k, d):
  signs = jax.random.rademacher(key, (k, d), jnp.float32)
  return signs / jnp.sqrt(jnp.float32(d))


def _orthogonal(key, k, d):
  z = jax.random.normal(key, (d, k), jnp.float32)
  q, r = jnp.linalg.qr(z)
  # Fixing the signs of R's diagonal makes Q Haar distributed.
  q = q * jnp.where(jnp.diag(r) < 0, -1.0, 1.0)
  return q.T


_RANDOM = {
  'gaussian': _gaussian,
  'rademacher': _rademacher,
  'orthogonal': _orthogonal,
}


def make_directions(
  name: str, dim: int, num_directions: int | None = None
) -> DirectionDesign:
  """Builds a direction design.

  Args:
    name: one of ``'coordinate'`` (all ``d`` unit coordinate vectors, so a
      message is a whole gradient), ``'coordinate_subset'`` (``k`` distinct
      coordinates drawn uniformly), ``'gaussian'`` (normalised Gaussian
      vectors, uniform on the sphere), ``'rademacher'`` (``±1/sqrt(d)``
      vectors) or ``'orthogonal'`` (``k`` orthonormal columns of a Haar random
      rotation).
    dim: number of parameters ``d``.
    num_directions: ``k``. Must be ``None`` or ``dim`` for ``'coordinate'``;
      required, and at most ``dim``, for the others.

  Returns:
    A :class:`DirectionDesign`.

  Raises:
    ValueError: for an unknown name, a non-positive ``dim`` or a ``k`` that is
      missing, non-positive or larger than ``dim``.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> design = make_directions('gaussian', dim=5, num_directions=2)
    >>> key = design.message_key(jax.random.key(0), 7)
    >>> design.project(key, jnp.ones(5)).shape
    (2,)
  """
  if name not in DESIGNS:
    raise ValueError(
      f'Unknown direction design `directions={name!r}`; known designs: '
      f'{", ".join(DESIGNS)}.'
    )
  if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
    raise ValueError(f'`dim` must be a positive integer, got {dim!r}.')
  if name == 'coordinate':
    if num_directions not in (None, dim):
      raise ValueError(
        f'`num_directions={num_directions!r}` does not fit the coordinate '
        f'design, which always uses all d={dim} coordinates; leave it unset '
        "or choose directions='coordinate_subset'."
      )
    return DirectionDesign(name, dim, dim)
  if num_directions is None:
    raise ValueError(
      f'`num_directions` is required for the {name!r} design '
      f'(an integer in [1, {dim}]).'
    )
  if (
    isinstance(num_directions, bool)
    or not isinstance(num_directions, int)
    or not 1 <= num_directions <= dim
  ):
    raise ValueError(
      f'`num_directions` must be an integer in [1, d={dim}], '
      f'got {num_directions!r}.'
    )
  make = None
  if name in _RANDOM:
    fn = _RANDOM[name]
    make = lambda key: fn(key, num_directions, dim)  # noqa: E731
  return DirectionDesign(name, dim, num_directions, make)
