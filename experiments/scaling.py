"""How fast the simulator runs as the number of workers grows.

Example:
  python -m experiments.scaling --out scaling.json --plot scaling.png
  python -m experiments.scaling --workers 1000 10000 --large
  python -m experiments.scaling --full

For each case (number of workers ``N``, staleness mode, oracle, direction
design, model) it measures, in one process on one machine:

* the simulator's messages per real second after compilation, with the
  compile time, the mean tick fill and the memory;
* the *ceiling*: the very same per-message work (each message's minibatch
  drawn from its worker's shard, at its own copy of the parameters, through
  the method's honest worker computation) done by one vmapped, jitted call,
  with none of the simulator's bookkeeping (event queue, staleness buffers,
  attacks, server steps);
* for small runs, the plain loop backend (one message at a time).

Timings on a shared machine are noisy, so the simulator and the ceiling are
timed in alternation, ``--repeats`` times, and the medians are reported with
the median of the per-repeat ratios. Prints a table and writes a JSON list of
records (``--out``) and a plot of messages per second against ``N``
(``--plot``).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import os
import platform
import resource
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from experiments import common
from experiments.flags import positive_float, positive_int
from farsign_jax._src import data as data_lib
from farsign_jax._src import models as models_lib
from farsign_jax._src.directions import DESIGNS
from farsign_jax._src.methods import registry
from farsign_jax._src.models import MODELS
from farsign_jax._src.oracles import ORACLES
from farsign_jax._src.simulator import driver, engine, loop, sharding
from farsign_jax._src.simulator.buffers import STALENESS_MODES
from farsign_jax._src.simulator.config import default_tick_size

DEFAULT_WORKERS = (10, 100, 1000, 10000)
LARGE_WORKERS = 100_000


@dataclasses.dataclass(frozen=True)
class Case:
  """One point of the benchmark grid."""

  workers: int
  staleness_mode: str
  oracle: str
  directions: str
  model: str


def grid(args: argparse.Namespace) -> list[Case]:
  """The cases to run, smallest ``N`` first within each configuration."""
  cases = [
    Case(n, mode, oracle, design, model)
    for model, oracle, design, mode, n in itertools.product(
      args.model, args.oracle, args.directions, args.staleness, args.workers
    )
  ]
  if args.large:
    cases += [
      Case(LARGE_WORKERS, 'ring', oracle, design, model)
      for model, oracle, design in itertools.product(
        args.model, args.oracle, args.directions
      )
    ]
  return cases


def synthetic_mnist(seed: int = 0) -> data_lib.Dataset:
  """60 000 + 10 000 MNIST-shaped images whose label sets a bright block."""
  rng = np.random.default_rng(seed)

  def make(n):
    labels = rng.integers(0, 10, n).astype(np.int32)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for digit in range(10):
      images[labels == digit, digit * 2 : digit * 2 + 3, 5:20] = 250
    return images, labels

  return data_lib.Dataset(*make(60_000), *make(10_000))


def load_dataset(args) -> tuple[data_lib.Dataset, str]:
  """Real MNIST from ``--data-dir`` or ``$FARSIGN_DATA_DIR``, else synthetic."""
  path = args.data_dir or os.environ.get(data_lib.DATA_DIR_ENV)
  if args.synthetic or not path:
    return synthetic_mnist(args.seed), 'synthetic'
  return data_lib.load_mnist_idx(path), 'mnist'


def run_config(case: Case, args) -> common.RunConfig:
  return common.RunConfig(
    model=case.model,
    directions=case.directions,
    num_directions=None if case.directions == 'coordinate' else args.k,
    oracle=case.oracle,
    workers=case.workers,
    attack='none',
    batch_size=args.batch_size,
    tick_size=args.tick_size,
    staleness=case.staleness_mode,
    max_staleness=(
      max(
        args.max_staleness,
        args.tick_size or default_tick_size(case.workers),
      )
      if case.staleness_mode == 'ring'
      else None
    ),
    seed=args.seed,
  )


def build_workers(config: common.RunConfig, model, dataset) -> engine.Workers:
  """The run's workers; with more workers than examples, shards repeat.

  MNIST has 60 000 training examples, so beyond that many workers each
  worker ``w`` samples from shard ``w mod 60 000``.
  """
  simulation = config.simulation()
  method = registry.make_method(
    'farsign', model.num_params, config.method_settings()
  )
  attack = common.make_attack(config)
  available = len(dataset.train_labels)
  if simulation.num_workers <= available:
    return driver.build_workers(method, attack, simulation, model, dataset)
  small = dataclasses.replace(simulation, num_workers=available)
  workers = driver.build_workers(method, attack, small, model, dataset)
  rows = jnp.arange(simulation.num_workers) % available
  byzantine, slowdown = engine.assign_roles(simulation)
  return dataclasses.replace(
    workers,
    config=simulation,
    shards=jax.tree.map(lambda x: x[rows], workers.shards),
    byzantine=jnp.asarray(byzantine),
    slowdown=jnp.asarray(slowdown),
  )


def nbytes(tree) -> int:
  return sum(x.size * x.dtype.itemsize for x in jax.tree.leaves(tree))


def peak_memory() -> tuple[int, str]:
  """Peak memory in bytes and where the figure comes from."""
  stats = jax.devices()[0].memory_stats() or {}
  if 'peak_bytes_in_use' in stats:
    return int(stats['peak_bytes_in_use']), 'device_memory_stats'
  # ru_maxrss is in kilobytes on Linux, bytes on macOS.
  scale = 1 if sys.platform == 'darwin' else 1024
  peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
  return int(peak), 'process_peak_rss'


class Ceiling:
  """The workers' per-message computation alone, ``width`` rows per call."""

  def __init__(self, workers: engine.Workers, width: int, seed: int):
    self.workers = workers
    self.width = width
    params = workers.init_params
    rng = np.random.default_rng(seed)
    num = workers.config.num_workers
    # Each row its own parameter copy and its own worker, like a tick.
    self.views = jnp.broadcast_to(params, (width,) + params.shape) + 0.0
    self.rows = jnp.asarray(rng.integers(0, num, width), jnp.int32)
    if workers.mesh is not None:
      self.views, self.rows = jax.tree.map(
        lambda x: jax.device_put(
          x,
          jax.sharding.NamedSharding(
            workers.mesh, jax.sharding.PartitionSpec(engine.WORKER_AXIS)
          ),
        ),
        (self.views, self.rows),
      )
    self._call = jax.jit(
      lambda w, views, rows, ids: jax.vmap(w.honest_message)(views, rows, ids)
    )
    self._next_id = 0

  def __call__(self) -> jax.Array:
    ids = self._next_id + jnp.arange(self.width, dtype=jnp.int32)
    self._next_id += self.width
    return self._call(self.workers, self.views, self.rows, ids)

  def time(self, messages: int) -> float:
    """Seconds to compute at least ``messages`` messages; returns the rate."""
    calls = max(1, math.ceil(messages / self.width))
    start = time.perf_counter()
    for _ in range(calls):
      out = self()
    out.block_until_ready()
    return calls * self.width / (time.perf_counter() - start)


def measure_loop(workers, messages: int) -> float:
  """Messages per second of the loop backend, its set-up left out."""
  loop.run_loop(workers, 3)  # compiles
  few = 5
  start = time.perf_counter()
  loop.run_loop(workers, few)
  short = time.perf_counter() - start
  start = time.perf_counter()
  loop.run_loop(workers, few + messages)
  long = time.perf_counter() - start
  return messages / max(long - short, 1e-9)


def measure(case: Case, args, model, dataset, mesh) -> dict:
  """Runs one case and returns its record."""
  config = run_config(case, args)
  workers = build_workers(config, model, dataset)
  if mesh is not None:
    workers = sharding.shard_workers(workers, mesh)
  simulation = workers.config
  size = simulation.resolved_tick_size
  record = dataclasses.asdict(case) | {
    'tick_size': size,
    'max_staleness': simulation.max_staleness,
    'batch_size': simulation.batch_size,
    'num_params': model.num_params,
    'num_directions': workers.method.message_size,
    'devices': 1 if mesh is None else mesh.size,
    'messages_per_second': None,
    'ceiling_messages_per_second': None,
    'loop_messages_per_second': None,
    'skipped': None,
  }
  view_bytes = 4 * model.num_params * (
    simulation.num_workers
    if case.staleness_mode == 'snapshot'
    else simulation.max_staleness + size
  )
  if view_bytes > args.max_state_gb * 2**30:
    record['skipped'] = (
      f'views need {view_bytes / 2**30:.1f} GiB > --max-state-gb '
      f'{args.max_state_gb}'
    )
    return record

  # The ceiling first: it tells how long one tick takes.
  widths = sorted({size, *args.ceiling_widths})
  ceilings = {w: Ceiling(workers, w, args.seed) for w in widths}
  pilot = {}
  for width, ceiling in ceilings.items():
    ceiling().block_until_ready()  # compiles
    pilot[width] = ceiling.time(width)
  width = max(pilot, key=pilot.get)
  ceiling = ceilings[width]
  tick_seconds = size / pilot[width]
  if tick_seconds > args.max_tick_seconds:
    record['skipped'] = (
      f'one tick of {size} messages takes ~{tick_seconds:.0f} s '
      f'> --max-tick-seconds {args.max_tick_seconds}'
    )
    record['ceiling_messages_per_second'] = pilot[width]
    return record

  state = engine.init_state(workers)
  if mesh is not None:
    state = sharding.shard_state(state, workers)
  state_bytes = nbytes(state)
  start = time.perf_counter()
  compiled = engine._run_until.lower(workers, state, jnp.int32(0)).compile()
  compile_seconds = time.perf_counter() - start
  analysis = compiled.memory_analysis()

  def run(state, messages):
    target = jnp.int32(int(state.version) + messages)
    start = time.perf_counter()
    state = compiled(workers, state, target)
    done = int(state.version)  # waits for the device
    return state, done, time.perf_counter() - start

  # A pilot chunk sizes the timed ones to about `--seconds` each.
  before = int(state.version)
  state, after, seconds = run(state, max(2 * size, 32))
  rate = (after - before) / seconds
  chunk = max(size, int(rate * args.seconds))
  sim_rates, ceiling_rates, ratios = [], [], []
  ticks_before, version_before = int(state.ticks), int(state.version)
  for _ in range(args.repeats):
    before = int(state.version)
    state, after, seconds = run(state, chunk)
    sim = (after - before) / seconds
    ceil = ceiling.time(after - before)
    sim_rates.append(sim)
    ceiling_rates.append(ceil)
    ratios.append(sim / ceil)
  ticks = int(state.ticks) - ticks_before
  messages = int(state.version) - version_before

  loop_rate = None
  if case.workers <= args.loop_max_workers and mesh is None:
    loop_messages = max(10, min(args.loop_messages, int(rate * args.seconds)))
    loop_rate = measure_loop(workers, loop_messages)
  peak, source = peak_memory()
  sim_rate = statistics.median(sim_rates)
  record.update(
    messages_per_second=sim_rate,
    ceiling_messages_per_second=statistics.median(ceiling_rates),
    ceiling_width=width,
    ratio_to_ceiling=statistics.median(ratios),
    loop_messages_per_second=loop_rate,
    ratio_to_loop=None if loop_rate is None else sim_rate / loop_rate,
    compile_seconds=compile_seconds,
    timed_messages=messages,
    mean_tick_fill=messages / max(ticks, 1),
    wasted_rows=1 - messages / max(ticks * size, 1),
    mean_staleness=float(state.staleness_sum) / max(int(state.version), 1),
    state_bytes=state_bytes,
    compiled_temp_bytes=int(getattr(analysis, 'temp_size_in_bytes', 0)),
    peak_memory_bytes=peak,
    peak_memory_source=source,
  )
  return record


COLUMNS = (
  ('workers', 'N', '{:>7}'),
  ('staleness_mode', 'mode', '{:>8}'),
  ('oracle', 'oracle', '{:>12}'),
  ('directions', 'design', '{:>10}'),
  ('model', 'model', '{:>6}'),
  ('tick_size', 'B', '{:>4}'),
  ('mean_tick_fill', 'fill', '{:>5.1f}'),
  ('messages_per_second', 'msg/s', '{:>8.0f}'),
  ('ceiling_messages_per_second', 'ceiling', '{:>8.0f}'),
  ('ratio_to_ceiling', '/ceil', '{:>5.2f}'),
  ('loop_messages_per_second', 'loop', '{:>6.0f}'),
  ('ratio_to_loop', '/loop', '{:>5.1f}'),
  ('compile_seconds', 'compile', '{:>7.1f}'),
  ('peak_memory_bytes', 'peak MiB', '{:>8.0f}'),
)


def table_row(record: dict) -> str:
  cells = []
  for key, _, fmt in COLUMNS:
    value = record.get(key)
    if key == 'peak_memory_bytes' and value is not None:
      value = value / 2**20
    width = len(fmt.format(0)) if 'f' in fmt else int(fmt[3:-1])
    cells.append('-'.rjust(width) if value is None else fmt.format(value))
  line = ' '.join(cells)
  if record.get('skipped'):
    line += f'  skipped: {record["skipped"]}'
  return line


def table_header() -> str:
  cells = []
  for _, title, fmt in COLUMNS:
    width = len(fmt.format(0)) if 'f' in fmt else int(fmt[3:-1])
    cells.append(title.rjust(width))
  return ' '.join(cells)


def plot(records: list[dict], path: str, title: str) -> None:
  """Messages per second against ``N``, one line per configuration."""
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  fig, ax = plt.subplots(figsize=(7, 4.5))
  key = lambda r: (  # noqa: E731
    r['staleness_mode'], r['oracle'], r['directions'], r['model']
  )
  for i, (label, group) in enumerate(
    itertools.groupby(sorted(records, key=key), key=key)
  ):
    group = sorted(
      (r for r in group if r['messages_per_second']), key=lambda r: r['workers']
    )
    if not group:
      continue
    color = f'C{i}'
    xs = [r['workers'] for r in group]
    ax.plot(xs, [r['messages_per_second'] for r in group], 'o-',
            color=color, label='/'.join(label))
    ax.plot(xs, [r['ceiling_messages_per_second'] for r in group], ':',
            color=color, alpha=0.7)
    loops = [(r['workers'], r['loop_messages_per_second']) for r in group
             if r['loop_messages_per_second']]
    if loops:
      ax.plot(*zip(*loops, strict=True), 'x--', color=color, alpha=0.7)
  ax.set_xscale('log')
  ax.set_yscale('log')
  ax.set_xlabel('workers N')
  ax.set_ylabel('messages per real second')
  ax.set_title(title + '\n(dotted: ceiling, dashed x: loop backend)')
  ax.grid(True, which='both', alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    prog='python -m experiments.scaling',
    description='Simulator throughput against the number of workers, with '
    'the vmapped ceiling and the loop backend.',
  )
  add = parser.add_argument
  add('--workers', type=positive_int, nargs='+', default=DEFAULT_WORKERS,
      help='numbers of workers N (default: %(default)s)')
  add('--large', action='store_true',
      help=f'add N={LARGE_WORKERS} in ring mode')
  add('--staleness', choices=STALENESS_MODES, nargs='+',
      default=list(STALENESS_MODES))
  add('--oracle', choices=ORACLES, nargs='+', default=None,
      help='default: first_order (all with --full)')
  add('--directions', choices=('coordinate', 'gaussian'), nargs='+',
      default=None, help='default: coordinate (both with --full)')
  add('--model', choices=MODELS, nargs='+', default=None,
      help='default: logreg (all with --full)')
  add('--full', action='store_true',
      help='every oracle, design and model not chosen explicitly')
  add('--k', type=positive_int, default=10,
      help='directions per message of the gaussian design')
  add('--batch-size', type=positive_int, default=128)
  add('--tick-size', type=positive_int, default=None,
      help='B; default: the configuration default for each N')
  add('--max-staleness', type=positive_int, default=1024,
      help='K of ring mode (default: %(default)s)')
  add('--seconds', type=positive_float, default=1.5,
      help='target length of one timed chunk (default: %(default)s)')
  add('--repeats', type=positive_int, default=3)
  add('--ceiling-widths', type=positive_int, nargs='+', default=[64],
      help='vmap widths tried for the ceiling besides B; the fastest is '
      'kept (default: %(default)s)')
  add('--loop-max-workers', type=int, default=1000,
      help='time the loop backend only up to this N')
  add('--loop-messages', type=positive_int, default=300)
  add('--max-state-gb', type=positive_float, default=4.0,
      help='skip cases whose staleness buffer is larger')
  add('--max-tick-seconds', type=positive_float, default=30.0,
      help='skip cases where one tick takes longer')
  add('--shard', action='store_true',
      help='shard the workers over every local device')
  add('--data-dir', default=None,
      help='MNIST IDX folder; default $FARSIGN_DATA_DIR, else synthetic')
  add('--synthetic', action='store_true', help='use synthetic data')
  add('--seed', type=int, default=0)
  add('--out', default=None, help='JSON file of the records')
  add('--plot', default=None, help='PNG plot of messages per second')
  args = parser.parse_args(argv)
  full = args.full
  if args.oracle is None:
    args.oracle = list(ORACLES) if full else ['first_order']
  if args.directions is None:
    args.directions = ['coordinate', 'gaussian'] if full else ['coordinate']
  if args.model is None:
    args.model = list(MODELS) if full else ['logreg']
  if args.k > 784:
    parser.error(f'`--k` must be at most the number of inputs, got {args.k}')
  if args.tick_size is not None and args.tick_size > min(args.workers):
    parser.error(
      f'`--tick-size {args.tick_size}` exceeds the smallest `--workers` '
      f'({min(args.workers)}): a tick never holds a worker twice.'
    )
  if args.synthetic and args.data_dir:
    parser.error('give either `--synthetic` or `--data-dir`, not both.')
  for design in args.directions:
    assert design in DESIGNS
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    dataset, data_name = load_dataset(args)
  except (FileNotFoundError, ValueError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  mesh = None
  if args.shard and jax.device_count() > 1:
    mesh = sharding.worker_mesh()
  machine = (
    f'{platform.machine()}, {os.cpu_count()} CPUs, '
    f'{jax.device_count()} x {jax.devices()[0].device_kind}'
  )
  print(f'data: {data_name}; machine: {machine}; jax {jax.__version__}')
  print(table_header())
  records = []
  for case in grid(args):
    model = models_lib.flat_model(
      models_lib.make_model(case.model), jax.random.key(args.seed)
    )
    record = measure(case, args, model, dataset, mesh)
    record.update(data=data_name, machine=machine)
    records.append(record)
    print(table_row(record), flush=True)
    if args.out:
      common.write_json_atomically(args.out, records)
  if args.plot:
    plot(records, args.plot, f'farsign simulator, {data_name} data')
  return 0


if __name__ == '__main__':
  sys.exit(main())
