"""The plain loop backend: one message at a time, in ordinary Python.

It follows the same events as the vmapped engine (same job times, minibatches,
directions and attack noise, all drawn from the same counters) with the
simplest bookkeeping there is: a NumPy array of arrival times, ``argmin`` for
the next event, a list of every server version. It exists to pin the fast
path to the obvious one, and as the reference the benchmark compares with.

Omniscient attacks read the honest messages of a tick; here a tick is a single
message, so their results differ from the engine's by design.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from farsign_jax._src.simulator.engine import Workers


class LoopTrace(NamedTuple):
  """Per-message record of a loop run."""

  workers: list
  message_ids: list
  staleness: list
  arrival_time: list


@jax.jit
def _job_time(workers: Workers, worker, job):
  return workers.job_time(worker, job)


@jax.jit
def _message(workers: Workers, params, worker, message_id):
  honest = workers.honest_message(params, worker, message_id)[None]
  return workers.corrupt(
    honest, worker[None], message_id[None], jnp.ones((1,), bool)
  )[0]


@jax.jit
def _apply(workers: Workers, server, message, message_id, staleness, worker):
  method = workers.method
  server = method.apply_message(server, message, message_id, staleness, worker)
  return server, method.params(server)


def run_loop(workers: Workers, num_messages: int):
  """Simulates ``num_messages`` arrivals one by one.

  Returns:
    ``(server_state, trace)`` where ``trace`` is a :class:`LoopTrace`.
  """
  config = workers.config
  num = config.num_workers
  byzantine = np.asarray(workers.byzantine)
  # float32 like the engine, so that both order the events identically.
  arrival = np.array(
    [_job_time(workers, jnp.int32(w), jnp.int32(0)) for w in range(num)],
    np.float32,
  )
  if workers.attack.silent:
    arrival[byzantine] = np.inf
  jobs = np.zeros(num, np.int64)
  read_version = np.zeros(num, np.int64)
  server = workers.method.init(workers.init_params)
  history = [workers.method.params(server)]  # history[v] = version v
  trace = LoopTrace([], [], [], [])

  for n in range(num_messages):
    worker = int(np.argmin(arrival))  # ties: the lowest worker id
    if not np.isfinite(arrival[worker]):
      break
    version = int(read_version[worker])
    if config.staleness == 'ring':
      version = max(version, n - config.max_staleness)
    message = _message(
      workers, history[version], jnp.int32(worker), jnp.int32(n)
    )
    server, params = _apply(
      workers,
      server,
      message,
      jnp.int32(n),
      jnp.int32(n - version),
      jnp.int32(worker),
    )
    history.append(params)

    trace.workers.append(worker)
    trace.message_ids.append(n)
    trace.staleness.append(n - version)
    trace.arrival_time.append(float(arrival[worker]))

    jobs[worker] += 1
    arrival[worker] += np.float32(
      _job_time(workers, jnp.int32(worker), jnp.int32(jobs[worker]))
    )
    read_version[worker] = n + 1
  return server, trace
