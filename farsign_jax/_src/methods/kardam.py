"""Kardam: an empirical Lipschitz filter with staleness damping.

For a gradient ``g`` from worker ``w``, computed at the parameters ``x`` the
worker read, the server compares it with the same worker's previous
gradient ``g'`` computed at ``x'``: the empirical Lipschitz coefficient is
``k = ||g - g'|| / ||x - x'||``. The gradient is accepted if ``k`` is at most
the ``(n - f) / n`` quantile of the last ``n`` coefficients the server
computed (all of them, accepted or not; no threshold until ``n`` are
known), and an accepted gradient moves the parameters by
``alpha_t * exp(-damping * tau) * g`` for staleness ``tau``. A worker's first
gradient only primes its estimate, and a non-finite gradient is rejected
and not remembered.

The server knows what each worker read: a worker restarts right after its
own message, so it reads the parameters as they stand after that message.
(With a ring staleness buffer the worker may read an older version; the
filter then uses a slightly wrong ``x``.)

References:
  Damaskinos, El Mhamdi, Guerraoui, Patra and Taziki, "Asynchronous
  Byzantine Machine Learning (the case of SGD)", ICML 2018,
  arXiv:1802.07928.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from farsign_jax._src.methods.base import Method


class KardamState(NamedTuple):
  """Server state of Kardam.

  Attributes:
    count: gradients accepted.
    params: the flat parameters.
    last_gradient: ``[N, d]`` each worker's last finite gradient.
    last_point: ``[N, d]`` where that gradient was computed.
    read_point: ``[N, d]`` the parameters each worker reads now.
    seen: ``[N]`` whether the worker has sent a finite gradient.
    window: ``[N]`` the last ``N`` Lipschitz coefficients, a ring.
    filled: coefficients written to the window so far.
  """

  count: jax.Array
  params: jax.Array
  last_gradient: jax.Array
  last_point: jax.Array
  read_point: jax.Array
  seen: jax.Array
  window: jax.Array
  filled: jax.Array


def kardam_method(
  dim: int,
  learning_rate: optax.ScalarOrSchedule,
  num_workers: int,
  num_byzantine: int,
  damping: float = 0.01,
) -> Method:
  """Kardam's filter and damping around asynchronous SGD.

  Args:
    dim: number of parameters ``d``.
    learning_rate: ``alpha``, a number or an optax schedule of the
      accepted gradients.
    num_workers: ``n``, also the length of the coefficient window.
    num_byzantine: ``f``; the filter keeps coefficients up to the
      ``(n - f) / n`` quantile.
    damping: ``beta`` of the staleness damping ``exp(-beta * tau)``.

  Returns:
    An asynchronous :class:`Method` that uses the sender's id.

  Raises:
    ValueError: if ``2 f >= n`` or ``damping`` is negative.

  Example:
    >>> method = kardam_method(7850, 0.3, num_workers=100, num_byzantine=20)
    >>> method.name
    'kardam'
  """
  if not 0 <= 2 * num_byzantine < num_workers:
    raise ValueError(
      f'`num_byzantine={num_byzantine!r}` must satisfy 0 <= 2 f < n = '
      f'{num_workers} for Kardam.'
    )
  if not damping >= 0:
    raise ValueError(f'`damping` must be non-negative, got {damping!r}.')
  rate = learning_rate if callable(learning_rate) else (
    lambda count: learning_rate
  )
  quantile = (num_workers - num_byzantine) / num_workers

  def init(params):
    per_worker = jnp.broadcast_to(params, (num_workers,) + params.shape)
    return KardamState(
      count=jnp.zeros([], jnp.int32),
      params=params,
      last_gradient=jnp.zeros_like(per_worker),
      last_point=per_worker,
      read_point=per_worker,
      seen=jnp.zeros(num_workers, bool),
      window=jnp.zeros(num_workers, params.dtype),
      filled=jnp.zeros([], jnp.int32),
    )

  def apply(state, gradient, message_id, staleness, worker):
    del message_id
    finite = jnp.all(jnp.isfinite(gradient))
    point = state.read_point[worker]
    moved = jnp.linalg.norm(point - state.last_point[worker])
    change = jnp.linalg.norm(gradient - state.last_gradient[worker])
    tiny = jnp.finfo(gradient.dtype).tiny
    coefficient = change / jnp.maximum(moved, tiny)
    known = state.seen[worker] & finite

    threshold = jnp.where(
      state.filled >= num_workers,
      jnp.quantile(state.window, quantile),
      jnp.inf,
    )
    accept = known & (coefficient <= threshold)
    alpha = jnp.asarray(rate(state.count), state.params.dtype)
    tau = jnp.asarray(staleness, gradient.dtype)
    scale = alpha * jnp.exp(-damping * tau)
    safe = jnp.where(finite, gradient, 0.0)
    params = jnp.where(accept, state.params - scale * safe, state.params)

    slot = state.filled % num_workers
    return KardamState(
      count=state.count + accept.astype(jnp.int32),
      params=params,
      last_gradient=state.last_gradient.at[worker].set(
        jnp.where(finite, safe, state.last_gradient[worker])
      ),
      last_point=state.last_point.at[worker].set(
        jnp.where(finite, point, state.last_point[worker])
      ),
      read_point=state.read_point.at[worker].set(params),
      seen=state.seen.at[worker].set(state.seen[worker] | finite),
      window=state.window.at[slot].set(
        jnp.where(known, coefficient, state.window[slot])
      ),
      filled=state.filled + known.astype(jnp.int32),
    )

  return Method(
    name='kardam',
    message_size=dim,
    init=init,
    params=lambda state: state.params,
    message=lambda loss, params, message_id: jax.grad(loss)(params),
    apply=apply,
    max_byzantine_fraction=0.5,
    description='Kardam: Lipschitz filter and staleness damping',
    uses_worker=True,
  )
