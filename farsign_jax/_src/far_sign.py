"""FAR-SIGN as an optax gradient transformation.

The server of FAR-SIGN keeps a gradient *tracker* ``g`` beside the
parameters. For every arriving message ``(y_1 … y_k, id)`` with directions
``u_j`` regenerated from ``(key, id)``, it moves the tracker by the *signs* of
the residuals,

    r_j = y_j - <u_j, g>,        g <- g + beta_n * sum_j sign(r_j) u_j,

and the parameters by ``x <- x - alpha_n g``. The fast step is a stochastic
subgradient step on ``E|y - <u, g>|``, so ``g`` settles, direction by
direction, on the *median* of the measurements it receives; one message moves
``g`` by at most ``beta_n ||sum_j ±u_j||`` whatever numbers it carries. With
``alpha_n / beta_n -> 0`` the tracker sees an almost frozen ``x`` (two
timescales), which removes the bias a plain sign step would leave.

Non-finite measurements never enter the state: ``sign(NaN) = 0`` and
``sign(±inf) = ±1`` through an explicit mask (``jnp.sign(nan)`` is NaN).

Two ways to call :func:`scale_by_far_sign`'s ``update``:

* with an ordinary gradient PyTree, as any optax transformation: the
  directions of message ``count`` are applied inside, so a single-process
  training loop gets the robust tracker without a simulator;
* with a :class:`DirectionalMessage` holding the ``k`` measurements of one
  worker and its message id, as the server step of an asynchronous system.

The median, not the mean, is what the tracker estimates: with skewed
minibatch gradients FAR-SIGN's clean accuracy sits slightly below SGD's. The
tracker also jitters by about ``beta sqrt(d)`` around its target, so under
strong attacks a decaying ``tracking_rate`` (see :func:`inverse_power_decay`)
is the robust choice.

References:
  Reiffers-Masson, Paul, Thoppe, Talagani, Roy and Ganesh, "Adversary-Robust
  Learning from Fully Asynchronous Directional Derivative Estimates", 2026,
  arXiv:2605.09337.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

from farsign_jax._src.directions import make_directions


class DirectionalMessage(NamedTuple):
  """One worker's message: ``k`` directional measurements and its id.

  Attributes:
    values: ``[k]`` measurements ``y_j`` along the message's directions;
      ``k`` is the design's ``num_directions`` (``d`` for ``'coordinate'``).
    message_id: non-negative integer id (a scalar); the directions are
      regenerated from it, so the sender and the server must use the same
      id. It is not checked at run time (it is traced under ``jit``).
  """

  values: chex.Array
  message_id: chex.Array


class ScaleByFarSignState(NamedTuple):
  """State of :func:`scale_by_far_sign`.

  Attributes:
    count: number of messages (or gradients) applied so far.
    tracker: the gradient tracker ``g``, shaped like the parameters.
  """

  count: chex.Array
  tracker: optax.Updates


def safe_sign(x: chex.Array) -> chex.Array:
  """``sign(x)`` with ``sign(NaN) = 0`` and ``sign(±inf) = ±1``."""
  one = jnp.ones((), x.dtype)
  return jnp.where(x > 0, one, jnp.where(x < 0, -one, jnp.zeros((), x.dtype)))


def inverse_power_decay(
  init_value: float, transition_steps: float, power: float
) -> optax.Schedule:
  """The schedule ``init_value * (1 + n / transition_steps) ** -power``.

  Use ``1/2 < power_tracking < power_learning <= 1`` for the two-timescale
  regime of the convergence analysis; ``power = 0`` is a constant step.

  Raises:
    ValueError: if ``init_value`` or ``transition_steps`` is not positive or
      ``power`` is negative.
  """
  if not 0 < init_value < float('inf'):
    raise ValueError(
      f'`init_value` must be positive and finite, got {init_value!r}.'
    )
  if not 0 < transition_steps < float('inf'):
    raise ValueError(
      '`transition_steps` must be positive and finite, got '
      f'{transition_steps!r}.'
    )
  if not 0 <= power < float('inf'):
    raise ValueError(
      f'`power` must be non-negative and finite, got {power!r}.'
    )

  def schedule(count):
    n = jnp.asarray(count, jnp.float32)
    return init_value * (1.0 + n / transition_steps) ** (-power)

  return schedule


def _check_rate(name: str, rate) -> None:
  if callable(rate):
    return
  if (
    isinstance(rate, bool)
    or not isinstance(rate, (int, float))
    or not 0 < rate < float('inf')
  ):
    raise ValueError(
      f'`{name}` must be a positive finite number or an optax schedule, '
      f'got {rate!r}.'
    )


def _check_seed(seed) -> None:
  # jax.random.key takes 32-bit seeds without x64: larger ones would alias.
  if isinstance(seed, bool) or not isinstance(seed, int) or not (
    0 <= seed < 2**32
  ):
    raise ValueError(
      f'`seed` must be an integer in [0, 2**32 - 1], got {seed!r}.'
    )


def _leaf_shapes(tree) -> dict[str, tuple[int, ...]]:
  leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
  return {
    jax.tree_util.keystr(path) or '(root)': tuple(jnp.shape(leaf))
    for path, leaf in leaves
  }


def _check_floating(params) -> None:
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  for path, leaf in leaves:
    dtype = jnp.result_type(leaf)
    if not jnp.issubdtype(dtype, jnp.floating):
      where = jax.tree_util.keystr(path) or '(root)'
      raise TypeError(
        'FAR-SIGN needs floating-point parameters (its tracker moves by '
        f'fractional steps), but the parameter leaf {where} has dtype '
        f'{dtype}. Cast the parameters to a floating dtype such as float32.'
      )


def _leaves(shapes: dict) -> str:
  return f'{len(shapes)} leaf' if len(shapes) == 1 else f'{len(shapes)} leaves'


def _check_gradient(updates, tracker) -> None:
  """Checks at trace time that ``updates`` is shaped like the parameters."""
  expected, received = _leaf_shapes(tracker), _leaf_shapes(updates)
  if (
    jax.tree.structure(updates) == jax.tree.structure(tracker)
    and expected == received
  ):
    return
  names = list(expected) + [name for name in received if name not in expected]
  lines = [
    f'{name}: expected {expected.get(name, "no leaf")}, '
    f'got {received.get(name, "no leaf")}'
    for name in names
    if expected.get(name) != received.get(name)
  ]
  if not lines:  # Same paths and shapes, different node types.
    lines = [
      f'expected structure {jax.tree.structure(tracker)}, '
      f'got {jax.tree.structure(updates)}'
    ]
  more = f'; and {len(lines) - 5} more' if len(lines) > 5 else ''

  def total(shapes):
    return sum(math.prod(shape) for shape in shapes.values())

  raise ValueError(
    'The gradient PyTree does not match the parameters the FAR-SIGN state '
    f'was initialised with: expected {_leaves(expected)} holding '
    f'{total(expected)} values, got {_leaves(received)} holding '
    f'{total(received)} values. Differences: ' + '; '.join(lines[:5]) + more
    + '.'
  )


def _check_message(message: DirectionalMessage, design) -> None:
  """Checks at trace time that a message holds ``k`` measurements."""
  k = design.num_directions
  shape = tuple(jnp.shape(message.values))
  if shape != (k,):
    raise ValueError(
      f'`DirectionalMessage.values` must have shape ({k},), one measurement '
      f'per direction (k={k} for the {design.name!r} design on '
      f'{design.dim} parameters), got shape {shape}.'
    )


def scale_by_far_sign(
  tracking_rate: optax.ScalarOrSchedule,
  directions: str = 'coordinate',
  num_directions: int | None = None,
  seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
  """Replaces updates by FAR-SIGN's robust gradient tracker.

  Args:
    tracking_rate: ``beta``, the fast step of the tracker: a positive number
      or an optax schedule of the message count.
    directions: the direction design (see :func:`make_directions`).
    num_directions: ``k`` for the random designs; unset for ``'coordinate'``.
    seed: the run seed from which message directions are regenerated.

  Returns:
    A transformation whose ``update`` takes a gradient PyTree or a
    :class:`DirectionalMessage` and returns the new tracker as the updates.

  Raises:
    ValueError: for a non-positive or non-finite rate, a ``seed`` outside
      ``[0, 2**32 - 1]`` or an unknown design; at ``init`` for a
      ``num_directions`` larger than the number of parameters; and at
      ``update`` (when traced, as shapes are static) for a gradient PyTree
      whose structure or leaf shapes differ from the parameters given to
      ``init``, or a :class:`DirectionalMessage` whose ``values`` is not of
      shape ``[k]``.
    TypeError: at ``init``, for parameters that are not floating point.

  Example:
    >>> import jax.numpy as jnp
    >>> tx = scale_by_far_sign(tracking_rate=0.1)
    >>> state = tx.init({'w': jnp.zeros(3)})
    >>> g, state = tx.update({'w': jnp.array([1.0, -2.0, jnp.nan])}, state)
    >>> g['w'].tolist()
    [0.10000000149011612, -0.10000000149011612, 0.0]
  """
  _check_rate('tracking_rate', tracking_rate)
  _check_seed(seed)
  # Validates the design name now; the dimension is only known at init.
  make_directions(directions, 1, None if directions == 'coordinate' else 1)
  base_key = jax.random.key(seed)

  def design_for(tree):
    dim = sum(x.size for x in jax.tree.leaves(tree))
    return make_directions(directions, dim, num_directions)

  def init_fn(params):
    _check_floating(params)
    design_for(params)
    tracker = jax.tree.map(jnp.zeros_like, params)
    return ScaleByFarSignState(jnp.zeros([], jnp.int32), tracker)

  def update_fn(updates, state, params=None, **extra_args):
    del params, extra_args
    flat_tracker, unravel = ravel_pytree(state.tracker)
    design = design_for(state.tracker)
    if isinstance(updates, DirectionalMessage):
      _check_message(updates, design)
      key = design.message_key(base_key, updates.message_id)
      project, expand = design.bind(key)
      values = jnp.asarray(updates.values, flat_tracker.dtype)
    else:
      _check_gradient(updates, state.tracker)
      key = design.message_key(base_key, state.count)
      project, expand = design.bind(key)
      flat_updates, _ = ravel_pytree(updates)
      values = project(flat_updates.astype(flat_tracker.dtype))
    residuals = values - project(flat_tracker)
    beta = tracking_rate(state.count) if callable(tracking_rate) else (
      tracking_rate
    )
    step = expand(safe_sign(residuals))
    flat_tracker = flat_tracker + jnp.asarray(beta, flat_tracker.dtype) * step
    tracker = unravel(flat_tracker)
    count = optax.safe_increment(state.count)
    return tracker, ScaleByFarSignState(count, tracker)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def far_sign(
  learning_rate: optax.ScalarOrSchedule,
  tracking_rate: optax.ScalarOrSchedule,
  directions: str = 'coordinate',
  num_directions: int | None = None,
  seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
  """FAR-SIGN: descent along a sign-driven, median-tracking gradient tracker.

  ``x <- x - learning_rate * g`` after ``g`` has taken the signed step of
  :func:`scale_by_far_sign`. The two rates are not compared number to
  number: ``alpha`` multiplies the tracker ``g``, while ``beta`` is a step of
  ``g`` itself. The two-timescale condition is on their ratio over time,
  ``alpha_n / beta_n -> 0``: for example a decaying ``learning_rate`` with a
  constant or more slowly decaying ``tracking_rate`` (see
  :func:`inverse_power_decay`).

  Args:
    learning_rate: ``alpha``, the slow step: a number or an optax schedule.
    tracking_rate: ``beta``, the fast step: a number or an optax schedule.
    directions: the direction design (see :func:`make_directions`).
    num_directions: ``k`` for the random designs.
    seed: the run seed of the directions.

  Returns:
    An optax ``GradientTransformationExtraArgs``.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> loss = lambda p: jnp.sum((p['w'] - 3.0) ** 2)
    >>> params = {'w': jnp.zeros(2)}
    >>> tx = far_sign(learning_rate=0.05, tracking_rate=0.2)
    >>> state = tx.init(params)
    >>> for _ in range(300):
    ...   updates, state = tx.update(jax.grad(loss)(params), state, params)
    ...   params = optax.apply_updates(params, updates)
    >>> bool(jnp.allclose(params['w'], 3.0, atol=0.2))
    True
  """
  _check_rate('learning_rate', learning_rate)
  return optax.chain(
    scale_by_far_sign(tracking_rate, directions, num_directions, seed),
    optax.scale_by_learning_rate(learning_rate),
  )
