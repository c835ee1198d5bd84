"""Staleness buffers: how each worker's stale view of the parameters is kept.

Every applied message creates a new server version, and the worker that sent
it reads exactly that version (it restarts right after its own message). Two
ways to keep those views, behind one interface:

* :class:`SnapshotBuffer`: one full copy per worker, ``N x d`` memory, exact
  for any staleness;
* :class:`RingBuffer`: the last versions in a ring, ``(K + B) x d`` memory for
  ``K`` the staleness cap and ``B`` the tick size. A worker whose version has
  left the ring computes at version ``n - K`` instead, so its staleness is
  ``min(tau, K)``. The cap does not depend on the tick size.

``read`` happens at the start of a tick, ``write`` after the tick's messages
were applied.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

STALENESS_MODES = ('snapshot', 'ring')


@dataclasses.dataclass(frozen=True)
class SnapshotBuffer:
  """One copy of the parameters per worker."""

  num_workers: int

  def init(self, params: jax.Array) -> jax.Array:
    return jnp.broadcast_to(params, (self.num_workers,) + params.shape)

  def read(self, buffer, workers, read_versions, message_ids):
    """Views ``[B, d]`` and the versions they are, for the tick's workers."""
    del message_ids
    return buffer[workers], read_versions

  def write(self, buffer, workers, new_versions, params_after, valid):
    del new_versions
    # Invalid rows are pointed past the end and dropped.
    rows = jnp.where(valid, workers, self.num_workers)
    return buffer.at[rows].set(params_after, mode='drop')


@dataclasses.dataclass(frozen=True)
class RingBuffer:
  """The last ``max_staleness + tick_size`` server versions."""

  max_staleness: int
  tick_size: int

  @property
  def slots(self) -> int:
    return self.max_staleness + self.tick_size

  def init(self, params: jax.Array) -> jax.Array:
    return jnp.broadcast_to(params, (self.slots,) + params.shape)

  def read(self, buffer, workers, read_versions, message_ids):
    del workers
    versions = jnp.maximum(read_versions, message_ids - self.max_staleness)
    return buffer[versions % self.slots], versions

  def write(self, buffer, workers, new_versions, params_after, valid):
    del workers
    rows = jnp.where(valid, new_versions % self.slots, self.slots)
    return buffer.at[rows].set(params_after, mode='drop')


def make_buffer(
  mode: str, num_workers: int, tick_size: int, max_staleness: int | None
):
  """Builds the staleness buffer of a simulation.

  Raises:
    ValueError: for an unknown mode, or a ring whose ``max_staleness`` is
      missing or smaller than the tick size.
  """
  if mode == 'snapshot':
    return SnapshotBuffer(num_workers)
  if mode == 'ring':
    if max_staleness is None or max_staleness < tick_size:
      raise ValueError(
        f'`max_staleness={max_staleness!r}` must be an integer at least the '
        f'tick size ({tick_size}) in ring mode.'
      )
    return RingBuffer(max_staleness, tick_size)
  raise ValueError(
    f'Unknown staleness mode `staleness={mode!r}`; known modes: '
    f'{", ".join(STALENESS_MODES)}.'
  )
