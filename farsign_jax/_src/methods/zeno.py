"""Zeno++: score each arriving gradient against a trusted server gradient.

The server holds a small trusted data set of its own. On each arrival it
computes (or reuses, see ``refresh_every``) a reference gradient ``v`` on a
trusted minibatch at the current parameters, rescales the arriving gradient
to ``g_hat = g ||v|| / ||g||`` and accepts it when its descent score
``<v, g_hat> - rho ||g_hat||^2`` is at least ``-epsilon``; an accepted
gradient moves the parameters by ``alpha_t * g_hat``. Non-finite gradients
are rejected.

This method needs trusted data at the server, which FAR-SIGN and the other
baselines do not: tables mark it so.

References:
  Xie, Koyejo and Gupta, "Zeno++: Robust Fully Asynchronous SGD", ICML 2020,
  arXiv:1903.07020.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from farsign_jax._src import data as data_lib
from farsign_jax._src.methods.base import Method

# trusted_loss(flat_params, key) -> scalar, on a trusted minibatch drawn
# with `key`.
TrustedLoss = Callable[[jax.Array, jax.Array], jax.Array]


class ZenoState(NamedTuple):
  """Server state of Zeno++.

  Attributes:
    count: arrivals scored.
    params: the flat parameters.
    reference: the trusted gradient ``v`` in use.
    accepted: gradients accepted.
  """

  count: jax.Array
  params: jax.Array
  reference: jax.Array
  accepted: jax.Array


def trusted_loss_from_data(
  loss, images, labels, batch_size: int = 64
) -> TrustedLoss:
  """A :data:`TrustedLoss` over a trusted set of examples.

  Args:
    loss: ``loss(flat_params, images, labels) -> scalar`` of the model.
    images: ``[t, ...]`` uint8 trusted images.
    labels: ``[t]`` their labels.
    batch_size: examples per trusted minibatch (drawn with replacement).

  Returns:
    ``trusted_loss(flat_params, key) -> scalar``.
  """
  images = jnp.asarray(images)
  labels = jnp.asarray(labels)

  def trusted_loss(params, key):
    index = jax.random.randint(key, (batch_size,), 0, labels.shape[0])
    batch = data_lib.normalize_images(images[index])
    return loss(params, images=batch, labels=labels[index])

  return trusted_loss


def zeno_method(
  dim: int,
  learning_rate: optax.ScalarOrSchedule,
  trusted_loss: TrustedLoss,
  rho: float = 1e-3,
  epsilon: float = 0.0,
  refresh_every: int = 1,
  seed: int = 0,
) -> Method:
  """Zeno++ around asynchronous SGD.

  Args:
    dim: number of parameters ``d``.
    learning_rate: ``alpha``, a number or an optax schedule.
    trusted_loss: the server's loss on its own data.
    rho: weight of the norm penalty in the score.
    epsilon: slack of the acceptance test.
    refresh_every: arrivals between two trusted gradients.
    seed: seed of the trusted minibatches.

  Returns:
    An asynchronous :class:`Method` with ``needs_trusted_data=True``.

  Raises:
    ValueError: for a negative ``rho`` or ``epsilon`` or a non-positive
      ``refresh_every``.
  """
  for name, value in (('rho', rho), ('epsilon', epsilon)):
    if not value >= 0:
      raise ValueError(f'`{name}` must be non-negative, got {value!r}.')
  if (
    isinstance(refresh_every, bool)
    or not isinstance(refresh_every, int)
    or refresh_every < 1
  ):
    raise ValueError(
      f'`refresh_every` must be a positive integer, got {refresh_every!r}.'
    )
  rate = learning_rate if callable(learning_rate) else (
    lambda count: learning_rate
  )
  key = jax.random.fold_in(jax.random.key(seed), 7)
  reference_of = jax.grad(trusted_loss)

  def init(params):
    return ZenoState(
      jnp.zeros([], jnp.int32),
      params,
      reference_of(params, jax.random.fold_in(key, 0)),
      jnp.zeros([], jnp.int32),
    )

  def apply(state, gradient, message_id, staleness):
    del staleness
    reference = jax.lax.cond(
      state.count % refresh_every == 0,
      functools.partial(reference_of, key=jax.random.fold_in(key, message_id)),
      lambda params: state.reference,
      state.params,
    )
    finite = jnp.all(jnp.isfinite(gradient))
    safe = jnp.where(finite, gradient, 0.0)
    tiny = jnp.finfo(gradient.dtype).tiny
    scaled = safe * (
      jnp.linalg.norm(reference) / jnp.maximum(jnp.linalg.norm(safe), tiny)
    )
    score = reference @ scaled - rho * scaled @ scaled
    accept = finite & (score >= -epsilon)
    alpha = jnp.asarray(rate(state.accepted), state.params.dtype)
    return ZenoState(
      optax.safe_increment(state.count),
      jnp.where(accept, state.params - alpha * scaled, state.params),
      reference,
      state.accepted + accept.astype(jnp.int32),
    )

  return Method(
    name='zeno',
    message_size=dim,
    init=init,
    params=lambda state: state.params,
    message=lambda loss, params, message_id: jax.grad(loss)(params),
    apply=apply,
    max_byzantine_fraction=None,
    needs_trusted_data=True,
    description='Zeno++: score filter against trusted server data',
  )
