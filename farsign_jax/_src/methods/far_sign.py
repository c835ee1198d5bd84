"""FAR-SIGN as a simulator :class:`Method`."""

from __future__ import annotations

from typing import NamedTuple

import jax
import optax

from farsign_jax._src.directions import make_directions
from farsign_jax._src.far_sign import DirectionalMessage, far_sign
from farsign_jax._src.methods.base import Method
from farsign_jax._src.oracles import make_oracle


class FarSignServerState(NamedTuple):
  params: jax.Array
  opt_state: optax.OptState


def far_sign_method(
  dim: int,
  learning_rate: optax.ScalarOrSchedule,
  tracking_rate: optax.ScalarOrSchedule,
  directions: str = 'coordinate',
  num_directions: int | None = None,
  oracle: str = 'first_order',
  smoothing: float = 1e-3,
  seed: int = 0,
) -> Method:
  """FAR-SIGN's workers and server for ``dim`` flat parameters.

  Workers send ``k`` directional measurements (first or zeroth order) along
  the directions of message ``message_id``; the server applies them one at a
  time, in arrival order, with :func:`~farsign_jax.far_sign`. Staleness is
  not used: the signed tracker needs no staleness correction.

  Args:
    dim: number of parameters ``d``.
    learning_rate: ``alpha``, a number or an optax schedule.
    tracking_rate: ``beta``, a number or an optax schedule.
    directions: direction design name.
    num_directions: ``k`` for the random designs.
    oracle: ``'first_order'`` or ``'zeroth_order'``.
    smoothing: ``mu`` of the zeroth-order oracle.
    seed: the run seed of the directions.

  Returns:
    An asynchronous :class:`Method`.
  """
  design = make_directions(directions, dim, num_directions)
  measure = make_oracle(oracle, design, smoothing)
  tx = far_sign(
    learning_rate, tracking_rate, directions, num_directions, seed
  )
  base_key = jax.random.key(seed)

  def init(params):
    return FarSignServerState(params, tx.init(params))

  def message(loss, params, message_id):
    return measure(loss, params, design.message_key(base_key, message_id))

  def apply(state, values, message_id, staleness):
    del staleness
    updates, opt_state = tx.update(
      DirectionalMessage(values, message_id), state.opt_state, state.params
    )
    return FarSignServerState(state.params + updates, opt_state)

  return Method(
    name='farsign',
    message_size=design.num_directions,
    init=init,
    params=lambda state: state.params,
    message=message,
    apply=apply,
    max_byzantine_fraction=0.5,
    description='FAR-SIGN: signed directional tracker, fully asynchronous',
  )
