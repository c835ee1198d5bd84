"""The vmapped, event-driven simulator of an asynchronous parameter server.

Workers are rows of arrays. Each holds the time its current job ends, the
server version it read and the index of its job. A *tick* takes the next
``B`` arrivals in ``(time, worker id)`` order, computes their honest messages
in one ``vmap`` at each worker's own stale view, lets the adversaries replace
theirs, and applies the messages one by one, in arrival order, inside one
``lax.scan``. A worker restarts right after its own message and reads the
version it created.

A tick never holds the same worker twice. A tick's arrivals are therefore
cut before the first one that comes later than the *next* arrival of a worker
already in the tick; the cut arrivals stay queued for the next tick. The
event schedule is exact and does not depend on ``B``: ``B`` only trades
wasted computation (cut rows) against the number of ticks.

Everything that is random (job times, minibatches, directions, attack noise)
derives from the run seed and a counter (the worker's job index or the
message's arrival index), so a run is reproducible bit for bit and a state
holds no PRNG key.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from farsign_jax._src import data as data_lib
from farsign_jax._src.attacks import Attack
from farsign_jax._src.methods.base import Method
from farsign_jax._src.simulator.buffers import make_buffer
from farsign_jax._src.simulator.config import SimulationConfig

# The mesh axis over which the worker axis is sharded.
WORKER_AXIS = 'workers'


class SimState(NamedTuple):
  """Complete state of an asynchronous simulation (a PyTree of arrays).

  Attributes:
    server: the method's server state.
    version: number of messages applied so far (the server version).
    arrival_time: ``[N]`` virtual time at which each worker's job ends
      (``inf`` for a worker that never sends).
    jobs: ``[N]`` index of each worker's current job.
    read_version: ``[N]`` server version each worker's current job read.
    views: the staleness buffer.
    clock: virtual time of the last applied message.
    byzantine_messages: messages applied that came from adversaries.
    staleness_sum: sum of the staleness of applied messages.
    staleness_max: largest staleness of an applied message.
    ticks: number of ticks run.
  """

  server: Any
  version: jax.Array
  arrival_time: jax.Array
  jobs: jax.Array
  read_version: jax.Array
  views: jax.Array
  clock: jax.Array
  byzantine_messages: jax.Array
  staleness_sum: jax.Array
  staleness_max: jax.Array
  ticks: jax.Array


class TickRecord(NamedTuple):
  """What one tick did, row by row (for tests and traces)."""

  workers: jax.Array
  message_ids: jax.Array
  staleness: jax.Array
  valid: jax.Array
  arrival_time: jax.Array


def assign_roles(config: SimulationConfig):
  """Adversarial workers and honest stragglers, drawn from the run seed.

  Returns:
    ``(byzantine [N] bool, slowdown [N] float32)`` as NumPy arrays.
  """
  rng = np.random.default_rng([config.seed, 1])
  order = rng.permutation(config.num_workers)
  byzantine = np.zeros(config.num_workers, bool)
  byzantine[order[: config.num_byzantine]] = True
  slowdown = np.ones(config.num_workers, np.float32)
  stragglers = order[
    config.num_byzantine : config.num_byzantine + config.num_stragglers
  ]
  slowdown[stragglers] = config.straggler_slowdown
  return byzantine, slowdown


@functools.partial(
  jax.tree_util.register_dataclass,
  data_fields=[
    'train_images',
    'train_labels',
    'shards',
    'byzantine',
    'slowdown',
    'init_params',
  ],
  meta_fields=['method', 'attack', 'config', 'loss', 'mesh'],
)
@dataclasses.dataclass(frozen=True)
class Workers:
  """What workers compute: shared by the vmapped engine and the loop backend.

  A PyTree whose arrays (the data, the roles) are leaves, so jitted functions
  take it as an argument instead of baking the data in as constants.

  Attributes:
    method: the training method.
    attack: the adversaries' behaviour.
    config: the simulation settings.
    loss: ``loss(flat_params, images_float, labels) -> scalar``.
    train_images: ``[n, 784]`` uint8 images on device.
    train_labels: ``[n]`` int32 labels on device.
    shards: each worker's data shard.
    byzantine: ``[N]`` bool, adversarial workers.
    slowdown: ``[N]`` float32 job-time factor.
    init_params: the initial flat parameters (for replay attacks).
    mesh: a ``jax.sharding.Mesh`` whose ``'workers'`` axis the worker axis
      of the state and of each tick is sharded over, or ``None`` for one
      device (see :mod:`~farsign_jax._src.simulator.sharding`).
  """

  method: Method
  attack: Attack
  config: SimulationConfig
  loss: Any
  train_images: jax.Array
  train_labels: jax.Array
  shards: Any
  byzantine: jax.Array
  slowdown: jax.Array
  init_params: jax.Array
  mesh: Any = None

  def constrain(self, rows: jax.Array) -> jax.Array:
    """Shards ``rows`` along its leading (worker) axis over :attr:`mesh`."""
    if self.mesh is None:
      return rows
    spec = jax.sharding.PartitionSpec(WORKER_AXIS)
    return jax.lax.with_sharding_constraint(
      rows, jax.sharding.NamedSharding(self.mesh, spec)
    )

  @property
  def keys(self):
    root = jax.random.key(self.config.seed)
    return {
      name: jax.random.fold_in(root, i)
      for i, name in enumerate(('clock', 'data', 'attack'))
    }

  def job_time(self, worker, job):
    """Virtual duration of ``worker``'s job number ``job``."""
    return self.config.compute_time.sample(
      self.keys['clock'], worker, job, self.slowdown[worker]
    )

  def honest_message(self, params, worker, message_id):
    """The message ``worker`` computes at ``params`` for ``message_id``.

    Adversaries of a label-flipping or replay attack compute here on their
    poisoned labels or the initial parameters; what they finally send is
    decided by :meth:`corrupt`.
    """
    is_bad = self.byzantine[worker]
    if self.attack.replays_initial:
      params = jnp.where(is_bad, self.init_params, params)
    batch_key = jax.random.fold_in(self.keys['data'], message_id)
    index = data_lib.sample_minibatch(
      self.shards, worker, batch_key, self.config.batch_size
    )
    images = data_lib.normalize_images(self.train_images[index])
    labels = self.train_labels[index]
    if self.attack.flips_labels:
      labels = jnp.where(is_bad, 9 - labels, labels)
    loss = functools.partial(self.loss, images=images, labels=labels)
    return self.method.message(loss, params, message_id)

  def corrupt(self, messages, workers, message_ids, valid):
    """Replaces the adversaries' rows of a tick's ``[B, m]`` messages."""
    keys = jax.vmap(jax.random.fold_in, (None, 0))(
      self.keys['attack'], message_ids
    )
    return self.attack.corrupt(
      messages, self.byzantine[workers], valid, keys
    )


@jax.jit
def init_state(workers: Workers) -> SimState:
  """Every worker reads version 0 at time 0 and starts its job 0.

  Jitted, so that the state owns fresh buffers that runs may donate.
  """
  config = workers.config
  num = config.num_workers
  ids = jnp.arange(num)
  arrival = jax.vmap(workers.job_time)(ids, jnp.zeros(num, jnp.int32))
  if workers.attack.silent:
    arrival = jnp.where(workers.byzantine, jnp.inf, arrival)
  buffer = _buffer(config)
  server = workers.method.init(workers.init_params)
  return SimState(
    server=server,
    version=jnp.zeros([], jnp.int32),
    arrival_time=arrival.astype(jnp.float32),
    jobs=jnp.zeros(num, jnp.int32),
    read_version=jnp.zeros(num, jnp.int32),
    views=buffer.init(workers.method.params(server)),
    clock=jnp.zeros([], jnp.float32),
    byzantine_messages=jnp.zeros([], jnp.int32),
    staleness_sum=jnp.zeros([], jnp.float32),
    staleness_max=jnp.zeros([], jnp.int32),
    ticks=jnp.zeros([], jnp.int32),
  )


def _buffer(config: SimulationConfig):
  return make_buffer(
    config.staleness,
    config.num_workers,
    config.resolved_tick_size,
    config.max_staleness,
  )


def tick(
  workers: Workers, state: SimState, budget: jax.Array
) -> tuple[SimState, TickRecord]:
  """Runs one tick; message ids at or past ``budget`` are not applied."""
  config = workers.config
  size = config.resolved_tick_size
  buffer = _buffer(config)

  # The next arrivals, earliest first; top_k breaks ties by lower index.
  negative_time, chosen = jax.lax.top_k(-state.arrival_time, size)
  times = -negative_time
  message_ids = state.version + jnp.arange(size, dtype=jnp.int32)
  next_jobs = state.jobs[chosen] + 1
  next_times = times + jax.vmap(workers.job_time)(chosen, next_jobs)

  # Cut the tick before an arrival that a worker of the tick precedes again.
  earlier_next = jax.lax.cummin(next_times)
  earlier_next = jnp.concatenate([jnp.full((1,), jnp.inf), earlier_next[:-1]])
  valid = (times < earlier_next) & jnp.isfinite(times) & (message_ids < budget)
  valid = jnp.cumprod(valid).astype(bool)

  read_versions = state.read_version[chosen]
  views, versions = buffer.read(
    state.views, chosen, read_versions, message_ids
  )
  staleness = message_ids - versions
  # With a mesh, the tick's rows are computed on every device.
  views, chosen_rows, row_ids = jax.tree.map(
    workers.constrain, (views, chosen, message_ids)
  )

  compute = jax.vmap(workers.honest_message)
  if config.worker_chunk is None:
    honest = compute(views, chosen_rows, row_ids)
  else:
    honest = jax.lax.map(
      lambda a: workers.honest_message(*a),
      (views, chosen_rows, row_ids),
      batch_size=config.worker_chunk,
    )
  sent = workers.corrupt(honest, chosen, message_ids, valid)

  method = workers.method

  def apply_one(server, row):
    message, message_id, tau, worker, ok = row
    # A branch rather than a select: a select would read and write the whole
    # server state for every row, which is costly for methods that keep
    # per-worker copies of the parameters.
    server = jax.lax.cond(
      ok,
      lambda s: method.apply_message(s, message, message_id, tau, worker),
      lambda s: s,
      server,
    )
    return server, method.params(server)

  server, params_after = jax.lax.scan(
    apply_one, state.server, (sent, message_ids, staleness, chosen, valid)
  )

  views = buffer.write(
    state.views, chosen, message_ids + 1, params_after, valid
  )
  if config.staleness == 'snapshot':
    views = workers.constrain(views)  # one view per worker: sharded
  applied = valid.astype(jnp.int32)
  count = applied.sum()
  last = jnp.maximum(count - 1, 0)
  state = SimState(
    server=server,
    version=state.version + count,
    arrival_time=workers.constrain(
      state.arrival_time.at[chosen].set(jnp.where(valid, next_times, times))
    ),
    jobs=workers.constrain(state.jobs.at[chosen].add(applied)),
    read_version=workers.constrain(
      state.read_version.at[chosen].set(
        jnp.where(valid, message_ids + 1, read_versions)
      )
    ),
    views=views,
    clock=jnp.where(count > 0, times[last], state.clock),
    byzantine_messages=state.byzantine_messages
    + (applied * workers.byzantine[chosen]).sum(),
    staleness_sum=state.staleness_sum
    + jnp.where(valid, staleness, 0).sum().astype(jnp.float32),
    staleness_max=jnp.maximum(
      state.staleness_max, jnp.where(valid, staleness, 0).max()
    ),
    ticks=state.ticks + 1,
  )
  record = TickRecord(chosen, message_ids, staleness, valid, times)
  return state, record


def run_until(
  workers: Workers, state: SimState, target: jax.Array
) -> SimState:
  """Runs ticks until ``target`` messages were applied or nobody is left.

  Stays on device: one ``lax.while_loop``, no host round trip per tick.
  """

  def more(state):
    alive = jnp.isfinite(state.arrival_time.min())
    return (state.version < target) & alive

  return jax.lax.while_loop(
    more, lambda s: tick(workers, s, target)[0], state
  )


_run_until = jax.jit(run_until, donate_argnums=(1,))


def make_runner(workers: Workers):
  """``run(state, target) -> state``, jitted, donating the old state."""
  return lambda state, target: _run_until(workers, state, target)
