"""Synchronous rounds on the same workers, data and virtual clock.

A round: every live worker reads the parameters as they stand at the round's
start and starts its next job, whose duration comes from the same clock
model as in the asynchronous engine (:meth:`Workers.job_time` with the
worker's job counter, so stragglers are the same workers with the same
draws). The round lasts until its slowest live worker arrives, or until
``method.quorum`` of them have (the later ones' work is dropped); the server
then aggregates the arrived messages in one call of ``method.apply_round``.
Silent adversaries are never waited for: they are left out of every round.

Every live worker's message is computed in one ``vmap`` at the shared
parameters, and rounds run on device in one ``lax.while_loop`` up to each
evaluation target, like :func:`engine.run_until`. Messages counted are the
arrivals used; staleness is zero by construction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from farsign_jax._src.simulator import driver
from farsign_jax._src.simulator.engine import Workers


class RoundState(NamedTuple):
  """Complete state of a synchronous simulation (a PyTree of arrays).

  The fields that :meth:`driver.SimulationResult.summary` reads have the
  same meaning as in :class:`engine.SimState`.

  Attributes:
    server: the method's server state.
    version: number of messages used so far.
    jobs: ``[N]`` index of each worker's next job.
    clock: virtual time at the end of the last round.
    byzantine_messages: messages used that came from adversaries.
    staleness_sum: always zero: every message is computed at the current
      parameters.
    staleness_max: always zero.
    ticks: number of rounds run.
  """

  server: Any
  version: jax.Array
  jobs: jax.Array
  clock: jax.Array
  byzantine_messages: jax.Array
  staleness_sum: jax.Array
  staleness_max: jax.Array
  ticks: jax.Array


class RoundRecord(NamedTuple):
  """What one round did (for tests and traces)."""

  arrived: jax.Array
  message_ids: jax.Array
  duration: jax.Array


@jax.jit
def init_rounds(workers: Workers) -> RoundState:
  """Nobody has worked yet; the clock reads zero."""
  num = workers.config.num_workers
  return RoundState(
    server=workers.method.init(workers.init_params),
    version=jnp.zeros([], jnp.int32),
    jobs=jnp.zeros(num, jnp.int32),
    clock=jnp.zeros([], jnp.float32),
    byzantine_messages=jnp.zeros([], jnp.int32),
    staleness_sum=jnp.zeros([], jnp.float32),
    staleness_max=jnp.zeros([], jnp.int32),
    ticks=jnp.zeros([], jnp.int32),
  )


def live_workers(workers: Workers) -> jax.Array:
  """``[N]`` bool: the workers that ever send (silent adversaries do not)."""
  if workers.attack.silent:
    return ~workers.byzantine
  return jnp.ones_like(workers.byzantine)


def round_step(
  workers: Workers, state: RoundState
) -> tuple[RoundState, RoundRecord]:
  """Runs one synchronous round."""
  config = workers.config
  method = workers.method
  num = config.num_workers
  ids = jnp.arange(num, dtype=jnp.int32)
  live = live_workers(workers)

  durations = jax.vmap(workers.job_time)(ids, state.jobs)
  durations = jnp.where(live, durations, jnp.inf)
  order = jnp.argsort(durations, stable=True)  # ties: the lower worker id
  rank = jnp.argsort(order)
  used = live.sum()
  if method.quorum is not None:
    used = jnp.minimum(used, method.quorum)
  arrived = live & (rank < used)
  duration = jnp.where(
    used > 0, jnp.sort(durations)[jnp.maximum(used - 1, 0)], 0.0
  )
  message_ids = state.version + rank.astype(jnp.int32)

  params = method.params(state.server)
  if config.worker_chunk is None:
    honest = jax.vmap(workers.honest_message, (None, 0, 0))(
      params, ids, message_ids
    )
  else:
    honest = jax.lax.map(
      lambda a: workers.honest_message(params, *a),
      (ids, message_ids),
      batch_size=config.worker_chunk,
    )
  sent = workers.corrupt(honest, ids, message_ids, arrived)
  server = method.apply_round(state.server, sent, arrived)

  state = RoundState(
    server=server,
    version=state.version + used.astype(jnp.int32),
    jobs=state.jobs + live.astype(jnp.int32),
    clock=state.clock + duration.astype(jnp.float32),
    byzantine_messages=state.byzantine_messages
    + (arrived & workers.byzantine).sum().astype(jnp.int32),
    staleness_sum=state.staleness_sum,
    staleness_max=state.staleness_max,
    ticks=state.ticks + 1,
  )
  return state, RoundRecord(arrived, message_ids, duration)


def run_rounds_until(
  workers: Workers, state: RoundState, target: jax.Array
) -> RoundState:
  """Runs rounds until ``target`` messages were used or nobody is left.

  The last round is never cut: the count may pass ``target`` by less than
  one round's arrivals.
  """
  alive = live_workers(workers).any()

  def more(state):
    return (state.version < target) & alive

  return jax.lax.while_loop(
    more, lambda s: round_step(workers, s)[0], state
  )


_run_rounds_until = jax.jit(run_rounds_until, donate_argnums=(1,))


def simulate_rounds(
  workers: Workers,
  num_messages: int,
  evaluate: Callable[[jax.Array], float],
  eval_every: int = 500,
  progress: Callable[[dict], None] | None = None,
  state: RoundState | None = None,
  curve: list[dict] | None = None,
  on_chunk: Callable[[RoundState, list], None] | None = None,
) -> driver.SimulationResult:
  """Runs a synchronous simulation for about ``num_messages`` messages.

  Args:
    workers: from :func:`driver.build_workers`, with a synchronous method.
    num_messages: messages to use; the last round may pass it.
    evaluate: ``evaluate(flat_params) -> accuracy``.
    eval_every: messages between evaluations (rounded up to whole rounds).
    progress: called with each new curve point.
    state: a state to continue from; a fresh one by default.
    curve: the curve recorded so far, continued in place with ``state``.
    on_chunk: called with the state and curve after each evaluation.

  Returns:
    A :class:`driver.SimulationResult` whose state is a :class:`RoundState`.

  Raises:
    ValueError: if ``num_messages`` or ``eval_every`` is not a positive
      integer, or the method is asynchronous.
  """
  for name, value in (
    ('num_messages', num_messages),
    ('eval_every', eval_every),
  ):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f'`{name}` must be a positive integer, got {value!r}.')
  if not workers.method.synchronous:
    raise ValueError(
      f'{workers.method.name!r} is asynchronous; run it with `simulate`.'
    )
  curve = [] if curve is None else curve
  elapsed = curve[-1]['real_time'] if curve else 0.0
  start = time.perf_counter() - elapsed
  if state is None:
    state = init_rounds(workers)
  params_of = jax.jit(lambda s: workers.method.params(s.server))
  compile_seconds = 0.0
  compile_messages = int(state.version)
  for target in driver.evaluation_points(num_messages, eval_every):
    if target <= int(state.version):
      continue
    chunk_start = time.perf_counter()
    state = _run_rounds_until(workers, state, jnp.int32(target))
    version = int(state.version)  # waits for the device
    if compile_seconds == 0.0:
      compile_seconds = time.perf_counter() - chunk_start
      compile_messages = version
    point = {
      'messages': version,
      'virtual_time': float(state.clock),
      'real_time': time.perf_counter() - start,
      'accuracy': float(evaluate(params_of(state))),
    }
    curve.append(point)
    if progress is not None:
      progress(point)
    if on_chunk is not None:
      on_chunk(state, curve)
    if version < target:  # every worker is silent
      break
  return driver.SimulationResult(
    state, curve, time.perf_counter() - start, compile_seconds,
    compile_messages,
  )
