"""Simulating many asynchronous workers, some adversarial, in one process.

Example:
  >>> import farsign_jax as fs
  >>> from farsign_jax import simulator
  >>> config = simulator.SimulationConfig(num_workers=1000)
  >>> config.resolved_tick_size
  19
"""

from farsign_jax._src.simulator.buffers import RingBuffer as RingBuffer
from farsign_jax._src.simulator.buffers import SnapshotBuffer as SnapshotBuffer
from farsign_jax._src.simulator.checkpoint import (
  SimulationCheckpointer as SimulationCheckpointer,
)
from farsign_jax._src.simulator.clock import COMPUTE_TIMES as COMPUTE_TIMES
from farsign_jax._src.simulator.clock import (
  ComputeTimeModel as ComputeTimeModel,
)
from farsign_jax._src.simulator.config import (
  SimulationConfig as SimulationConfig,
)
from farsign_jax._src.simulator.config import (
  default_tick_size as default_tick_size,
)
from farsign_jax._src.simulator.driver import (
  SimulationResult as SimulationResult,
)
from farsign_jax._src.simulator.driver import build_workers as build_workers
from farsign_jax._src.simulator.driver import simulate as simulate
from farsign_jax._src.simulator.engine import SimState as SimState
from farsign_jax._src.simulator.engine import TickRecord as TickRecord
from farsign_jax._src.simulator.engine import Workers as Workers
from farsign_jax._src.simulator.engine import init_state as init_state
from farsign_jax._src.simulator.engine import run_until as run_until
from farsign_jax._src.simulator.engine import tick as tick
from farsign_jax._src.simulator.loop import run_loop as run_loop
from farsign_jax._src.simulator.rounds import RoundState as RoundState
from farsign_jax._src.simulator.rounds import simulate_rounds as simulate_rounds
from farsign_jax._src.simulator.sharding import shard_state as shard_state
from farsign_jax._src.simulator.sharding import shard_workers as shard_workers
from farsign_jax._src.simulator.sharding import worker_mesh as worker_mesh

__all__ = (
  'build_workers',
  'COMPUTE_TIMES',
  'ComputeTimeModel',
  'default_tick_size',
  'init_state',
  'RingBuffer',
  'RoundState',
  'run_loop',
  'run_until',
  'shard_state',
  'shard_workers',
  'SimState',
  'simulate',
  'simulate_rounds',
  'SimulationCheckpointer',
  'SimulationConfig',
  'SimulationResult',
  'SnapshotBuffer',
  'tick',
  'TickRecord',
  'worker_mesh',
  'Workers',
)
