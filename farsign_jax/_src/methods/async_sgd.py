"""Asynchronous SGD with no defence: the server steps on every gradient."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from farsign_jax._src.methods.base import Method


class AsyncSgdState(NamedTuple):
  params: jax.Array
  count: jax.Array


def async_sgd_method(
  dim: int, learning_rate: optax.ScalarOrSchedule
) -> Method:
  """Asynchronous SGD: ``x <- x - alpha_n * gradient`` for each arrival.

  It has no defence: one adversarial or non-finite gradient moves the
  parameters arbitrarily. It is the baseline that shows an attack bites.

  Args:
    dim: number of parameters ``d``.
    learning_rate: ``alpha``, a number or an optax schedule.

  Returns:
    An asynchronous :class:`Method` whose messages are whole gradients.
  """
  rate = learning_rate if callable(learning_rate) else (
    lambda count: learning_rate
  )

  def apply(state, gradient, message_id, staleness):
    del message_id, staleness
    alpha = jnp.asarray(rate(state.count), state.params.dtype)
    return AsyncSgdState(
      state.params - alpha * gradient, optax.safe_increment(state.count)
    )

  return Method(
    name='async_sgd',
    message_size=dim,
    init=lambda params: AsyncSgdState(params, jnp.zeros([], jnp.int32)),
    params=lambda state: state.params,
    message=lambda loss, params, message_id: jax.grad(loss)(params),
    apply=apply,
    max_byzantine_fraction=None,
    description='asynchronous SGD, no defence',
  )
