"""Sharding the simulator's worker axis over several devices.

The simulator keeps every worker as a row of arrays: its next arrival time,
its job index, the version it read, its data shard, its role and, in
snapshot mode, its own view of the parameters (``N x d`` numbers, the largest
array of a run). :func:`shard_workers` and :func:`shard_state` spread those
rows over the ``'workers'`` axis of a :class:`jax.sharding.Mesh`; everything
else (the server state, the ring buffer, the training images) is replicated.
Inside a tick the engine also shards the tick's rows, so the vmapped worker
computation, the costly part, runs on every device at once, while the server
applies the tick's messages in arrival order on the replicated state. The
event schedule and the messages do not depend on the number of devices.

One host, several devices (a multi-GPU machine, a TPU host, or CPU devices
forced with ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before
``jax`` is imported)::

  mesh = worker_mesh()                     # every local device
  workers = shard_workers(workers, mesh)
  state = shard_state(engine.init_state(workers), workers)
  state = engine.make_runner(workers)(state, jnp.int32(10_000))

Several hosts. The same code runs as one SPMD program per host:

1. on every host, call ``jax.distributed.initialize(coordinator_address,
   num_processes, process_id)`` (on Cloud TPU and under SLURM the arguments
   are found automatically) before any other JAX call;
2. build the same :class:`~farsign_jax._src.simulator.engine.Workers` on
   every host (same data, same seed: the roles, shards and clocks derive
   from the seed, so every host computes the same ones);
3. call ``worker_mesh(jax.devices())``: ``jax.devices()`` then lists the
   devices of all hosts, so the worker rows are split across hosts too;
4. :func:`shard_workers` and :func:`shard_state` place each host's rows from
   its local copy (``jax.make_array_from_callback``), and the jitted runner
   runs on all hosts in lockstep. Read results with
   ``jax.experimental.multihost_utils.process_allgather`` or on process 0.

Keep ``N`` a multiple of the number of devices. The server step is
sequential by nature and runs replicated on every device; with many devices
per host, the tick size should grow with the device count so each device
computes several rows per tick.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from farsign_jax._src.simulator import engine


def worker_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A one-axis mesh named ``'workers'`` over ``devices``.

  Args:
    devices: the devices to use; all devices (of every host, after
      ``jax.distributed.initialize``) by default.

  Returns:
    A :class:`jax.sharding.Mesh` with the single axis ``'workers'``.

  Raises:
    ValueError: if ``devices`` is empty.

  Example:
    >>> mesh = worker_mesh()
    >>> mesh.axis_names
    ('workers',)
  """
  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError('`devices` must name at least one device, got none.')
  return Mesh(np.asarray(devices), (engine.WORKER_AXIS,))


def _place(value, sharding: NamedSharding):
  host = np.asarray(value)
  return jax.make_array_from_callback(
    host.shape, sharding, lambda index: host[index]
  )


def shard_workers(workers: engine.Workers, mesh: Mesh) -> engine.Workers:
  """``workers`` with its per-worker arrays sharded over ``mesh``.

  The data shards, roles and slowdowns are split by rows over the
  ``'workers'`` axis; the images, labels and initial parameters are
  replicated. The returned object carries ``mesh``, so the engine also
  shards each tick's rows.

  Args:
    workers: from :func:`~farsign_jax._src.simulator.driver.build_workers`.
    mesh: from :func:`worker_mesh`.

  Returns:
    A new :class:`~farsign_jax._src.simulator.engine.Workers`.

  Raises:
    ValueError: if the mesh has no ``'workers'`` axis, or the number of
      workers is not a multiple of its size.
  """
  if engine.WORKER_AXIS not in mesh.axis_names:
    raise ValueError(
      f'`mesh` must have a {engine.WORKER_AXIS!r} axis, got axes '
      f'{mesh.axis_names!r}.'
    )
  size = mesh.shape[engine.WORKER_AXIS]
  num = workers.config.num_workers
  if num % size:
    raise ValueError(
      f'`num_workers={num}` must be a multiple of the {size} devices of '
      f'the mesh, so that every device holds as many workers.'
    )
  rows = NamedSharding(mesh, PartitionSpec(engine.WORKER_AXIS))
  replicated = NamedSharding(mesh, PartitionSpec())
  return dataclasses.replace(
    workers,
    train_images=_place(workers.train_images, replicated),
    train_labels=_place(workers.train_labels, replicated),
    shards=jax.tree.map(lambda x: _place(x, rows), workers.shards),
    byzantine=_place(workers.byzantine, rows),
    slowdown=_place(workers.slowdown, rows),
    init_params=_place(workers.init_params, replicated),
    mesh=mesh,
  )


def shard_state(
  state: engine.SimState, workers: engine.Workers
) -> engine.SimState:
  """``state`` with its per-worker rows sharded over ``workers.mesh``.

  The arrival times, job indices and read versions, and the views in
  snapshot mode, are split by rows; the rest is replicated.

  Args:
    state: a simulation state, e.g. from ``engine.init_state(workers)``.
    workers: from :func:`shard_workers`.

  Returns:
    The same state, placed on the mesh's devices.

  Raises:
    ValueError: if ``workers`` carries no mesh.
  """
  mesh = workers.mesh
  if mesh is None:
    raise ValueError(
      '`workers.mesh` is None; pass workers from `shard_workers` first.'
    )
  rows = NamedSharding(mesh, PartitionSpec(engine.WORKER_AXIS))
  replicated = NamedSharding(mesh, PartitionSpec())
  per_worker = {'arrival_time', 'jobs', 'read_version'}
  if workers.config.staleness == 'snapshot':
    per_worker.add('views')
  fields = {
    name: jax.tree.map(
      lambda x, name=name: _place(
        x, rows if name in per_worker else replicated
      ),
      value,
    )
    for name, value in state._asdict().items()
  }
  return engine.SimState(**fields)
