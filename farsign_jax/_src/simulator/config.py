"""Settings of a simulated parameter-server system."""

from __future__ import annotations

import dataclasses
import math

from farsign_jax._src.simulator.buffers import STALENESS_MODES
from farsign_jax._src.simulator.clock import ComputeTimeModel

# JAX keys take 32-bit seeds unless x64 is on: larger seeds would alias.
MAX_SEED = 2**32 - 1


def default_tick_size(num_workers: int) -> int:
  """A tick size that most ticks fill, for exponential job times.

  A tick is cut before an arrival that comes after the next arrival of a
  worker already in the tick. With exponential job times an uncut tick runs
  to about ``sqrt(pi N / 2)`` arrivals on average, but short cuts are
  frequent, and every cut row is computed for nothing. ``(6 N) ** (1/3)``
  (9 at N = 100, 19 at 1 000, 40 at 10 000) filled 87-97 % of each tick in
  the scaling benchmark on a 2-core CPU; on an accelerator, where a wider
  vmap costs little more than a narrow one, a larger ``tick_size`` can pay.
  Lighter-tailed models (``'lognormal'``, ``'fixed'``) fill larger ticks.
  """
  return max(1, min(num_workers, math.ceil((6 * num_workers) ** (1 / 3))))


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
  """How many workers, how they behave, and how the simulator batches them.

  Attributes:
    num_workers: ``N``, the number of virtual workers.
    byzantine_fraction: share of the workers that are adversarial, in
      ``[0, 1)``.
    straggler_fraction: share of the workers (taken among the honest ones)
      whose jobs are ``straggler_slowdown`` times slower, in ``[0, 1)``.
    straggler_slowdown: the slowdown factor ``c >= 1`` of stragglers.
    compute_time: the job-time model of a normal-speed worker.
    batch_size: minibatch size of one message.
    tick_size: ``B``, the most arrivals computed and applied per tick;
      ``None`` picks :func:`default_tick_size`.
    staleness: ``'snapshot'`` (one view per worker) or ``'ring'``.
    max_staleness: ``K``, the staleness cap of ring mode.
    worker_chunk: if set, the tick's worker computation runs in chunks of
      this many workers (``lax.map``), to bound memory.
    partition: ``'iid'`` or ``'dirichlet'`` data shards.
    dirichlet_alpha: concentration of the Dirichlet partition.
    seed: the run seed: worker roles, data, clock, directions and attacks
      all derive their randomness from it.
  """

  num_workers: int = 100
  byzantine_fraction: float = 0.2
  straggler_fraction: float = 0.1
  straggler_slowdown: float = 5.0
  compute_time: ComputeTimeModel = ComputeTimeModel()
  batch_size: int = 32
  tick_size: int | None = None
  staleness: str = 'snapshot'
  max_staleness: int | None = None
  worker_chunk: int | None = None
  partition: str = 'iid'
  dirichlet_alpha: float = 0.5
  seed: int = 0

  def __post_init__(self):
    _positive_int('num_workers', self.num_workers)
    _positive_int('batch_size', self.batch_size)
    _fraction('byzantine_fraction', self.byzantine_fraction)
    _fraction('straggler_fraction', self.straggler_fraction)
    if self.num_byzantine + self.num_stragglers > self.num_workers:
      raise ValueError(
        f'`straggler_fraction={self.straggler_fraction!r}` asks for '
        f'{self.num_stragglers} stragglers among the '
        f'{self.num_workers - self.num_byzantine} honest workers; lower it.'
      )
    if not 1 <= self.straggler_slowdown < math.inf:
      raise ValueError(
        '`straggler_slowdown` must be a finite number at least 1, got '
        f'{self.straggler_slowdown!r}.'
      )
    if self.tick_size is not None:
      _positive_int('tick_size', self.tick_size)
      if self.tick_size > self.num_workers:
        raise ValueError(
          f'`tick_size={self.tick_size!r}` exceeds `num_workers='
          f'{self.num_workers}`: a tick never holds a worker twice.'
        )
    if self.staleness not in STALENESS_MODES:
      raise ValueError(
        f'Unknown staleness mode `staleness={self.staleness!r}`; known '
        f'modes: {", ".join(STALENESS_MODES)}.'
      )
    if self.staleness == 'ring':
      _positive_int('max_staleness', self.max_staleness)
      if self.max_staleness < self.resolved_tick_size:
        raise ValueError(
          f'`max_staleness={self.max_staleness!r}` must be at least the '
          f'tick size {self.resolved_tick_size}.'
        )
    if self.worker_chunk is not None:
      _positive_int('worker_chunk', self.worker_chunk)
    if self.partition not in ('iid', 'dirichlet'):
      raise ValueError(
        f'Unknown partition `partition={self.partition!r}`; known: iid, '
        'dirichlet.'
      )
    if not 0 < self.dirichlet_alpha < math.inf:
      raise ValueError(
        '`dirichlet_alpha` must be a positive finite number, got '
        f'{self.dirichlet_alpha!r}.'
      )
    if (
      isinstance(self.seed, bool)
      or not isinstance(self.seed, int)
      or not 0 <= self.seed <= MAX_SEED
    ):
      raise ValueError(
        f'`seed` must be an integer in [0, 2**32 - 1], got {self.seed!r}.'
      )

  @property
  def num_byzantine(self) -> int:
    # Rounded down, so the adversaries never exceed the stated fraction.
    return math.floor(self.byzantine_fraction * self.num_workers + 1e-9)

  @property
  def num_stragglers(self) -> int:
    return math.floor(self.straggler_fraction * self.num_workers + 1e-9)

  @property
  def resolved_tick_size(self) -> int:
    if self.tick_size is None:
      return default_tick_size(self.num_workers)
    return self.tick_size


def _positive_int(name, value):
  if isinstance(value, bool) or not isinstance(value, int) or value < 1:
    raise ValueError(f'`{name}` must be a positive integer, got {value!r}.')


def _fraction(name, value):
  if (
    isinstance(value, bool)
    or not isinstance(value, (int, float))
    or not 0 <= value < 1
  ):
    raise ValueError(f'`{name}` must be a number in [0, 1), got {value!r}.')
