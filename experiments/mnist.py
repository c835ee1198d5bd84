"""Train on MNIST in a simulated asynchronous system with adversaries.

Example:
  python -m experiments.mnist --data-dir ../shared/data/mnist \
      --attack sign_flip --out results.json --plot curve.png

Prints a progress bar and a one-line summary, and writes a JSON record with
every setting used, the accuracy figures, the throughput and the curve of test
accuracy over messages, virtual time and real time.
"""

from __future__ import annotations

import argparse
import sys

from experiments import common, plotting
from experiments.flags import (
  finite_float,
  fraction,
  non_negative_float,
  positive_float,
  positive_int,
  seed,
)
from farsign_jax._src.attacks import ATTACKS
from farsign_jax._src.directions import DESIGNS
from farsign_jax._src.methods.registry import METHODS
from farsign_jax._src.models import MODELS
from farsign_jax._src.oracles import ORACLES
from farsign_jax._src.simulator import checkpoint
from farsign_jax._src.simulator.buffers import STALENESS_MODES
from farsign_jax._src.simulator.checkpoint import SimulationCheckpointer
from farsign_jax._src.simulator.clock import COMPUTE_TIMES

# Messages between checkpoints when --checkpoint-dir is set.
DEFAULT_CHECKPOINT_EVERY = 5000


def add_run_flags(parser: argparse.ArgumentParser) -> None:
  """Flags shared by the entry points that run simulations."""
  d = common.RunConfig()
  add = parser.add_argument
  add('--model', choices=MODELS, default=d.model,
      help='default: %(default)s')
  add('--directions', choices=DESIGNS, default=d.directions,
      help='direction design of FAR-SIGN (default: %(default)s)')
  add('--num-directions', type=positive_int, default=None,
      help='k, directions per message, for the random designs')
  add('--oracle', choices=ORACLES, default=d.oracle)
  add('--smoothing', type=positive_float, default=d.smoothing,
      help='mu of the zeroth-order oracle (default: %(default)s)')
  add('--learning-rate', type=positive_float, default=None,
      help="alpha_0; default: the method's own")
  add('--learning-rate-decay', type=non_negative_float,
      default=d.learning_rate_decay,
      help='a in alpha_n = alpha_0 (1 + n/n0)^-a (default: %(default)s)')
  add('--tracking-rate', type=positive_float, default=None,
      help="beta_0 of FAR-SIGN; default: the method's own")
  add('--tracking-rate-decay', type=non_negative_float,
      default=d.tracking_rate_decay,
      help='b in beta_n = beta_0 (1 + n/n0)^-b (default: %(default)s)')
  add('--decay-steps', type=positive_float, default=d.decay_steps,
      help='n0 of both schedules (default: %(default)s)')
  add('--workers', type=positive_int, default=d.workers,
      help='number of virtual workers (default: %(default)s)')
  add('--byzantine-fraction', type=fraction, default=d.byzantine_fraction,
      help='share of adversarial workers (default: %(default)s)')
  add('--attack-strength', type=finite_float, default=None,
      help='scale (sign_flip), std (gaussian), value (constant), z (alie) '
      'or epsilon (ipm); default: the attack\'s own')
  add('--stragglers', type=fraction, default=d.stragglers,
      help='share of honest workers that are slow (default: %(default)s)')
  add('--straggler-slowdown', type=positive_float,
      default=d.straggler_slowdown)
  add('--compute-time', choices=COMPUTE_TIMES, default=d.compute_time)
  add('--messages', type=positive_int, default=d.messages,
      help='messages the server applies (default: %(default)s); '
      'synchronous methods round up to whole rounds')
  add('--batch-size', type=positive_int, default=d.batch_size,
      help='minibatch of one message (default: %(default)s)')
  add('--tick-size', type=positive_int, default=None,
      help='arrivals per simulator tick (default: picked from --workers)')
  add('--staleness', choices=STALENESS_MODES, default=d.staleness)
  add('--max-staleness', type=positive_int, default=None,
      help='staleness cap K of ring mode')
  add('--partition', choices=('iid', 'dirichlet'), default=d.partition)
  add('--dirichlet-alpha', type=positive_float, default=d.dirichlet_alpha)
  add('--eval-every', type=positive_int, default=d.eval_every,
      help='messages between test evaluations (default: %(default)s)')
  add('--train-examples', type=positive_int, default=None,
      help='use only the first N training examples')
  add('--seed', type=seed, default=d.seed,
      help='run seed, in [0, 2**32 - 1] (default: %(default)s)')
  add('--data-dir', default=None,
      help='folder with the four MNIST IDX files; default: '
      '$FARSIGN_DATA_DIR, else tensorflow-datasets')
  add('--no-progress', action='store_true', help='hide the progress bar')


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    prog='python -m experiments.mnist',
    description='MNIST under attacks and stragglers in a simulated '
    'asynchronous parameter server.',
  )
  parser.add_argument('--method', choices=sorted(METHODS), default='farsign',
                      help='default: %(default)s')
  parser.add_argument('--attack', choices=sorted(ATTACKS), default='none',
                      help='default: %(default)s')
  add_run_flags(parser)
  parser.add_argument('--out', default=None, help='JSON results file')
  parser.add_argument(
    '--plot', default=None,
    help='accuracy curves as an image (.png, .pdf or .svg)',
  )
  add_checkpoint_flags(parser)
  args = parser.parse_args(argv)
  try:
    check_output_paths(args.out, args.plot)
    args.config = config_from_args(args)
    check_applicable(args.config)
    common.make_attack(args.config)
    args.checkpointer = checkpointer_from_args(args)
  except ValueError as error:
    parser.error(str(error))
  return args


def check_applicable(config: common.RunConfig) -> None:
  """Refuses flags that the chosen method or mode would silently ignore.

  Raises:
    ValueError: naming the flag and what it needs.
  """
  synchronous = METHODS[config.method].synchronous
  if config.max_staleness is not None and config.staleness != 'ring':
    raise ValueError(
      '`--max-staleness` only applies with `--staleness ring`.'
    )
  if config.method != 'farsign':
    if config.tracking_rate is not None:
      raise ValueError('`--tracking-rate` only applies to `--method farsign`.')
    if config.directions != 'coordinate' or config.oracle != 'first_order':
      raise ValueError(
        '`--directions` and `--oracle` only apply to `--method farsign`; '
        f'{config.method} sends whole gradients.'
      )
  if synchronous and (
    config.tick_size is not None or config.staleness != 'snapshot'
  ):
    raise ValueError(
      f'`--tick-size` and `--staleness` do not apply to {config.method}: '
      'synchronous rounds have neither ticks nor stale views.'
    )


PLOT_FORMATS = ('.png', '.pdf', '.svg')


def check_output_paths(out: str | None, plot: str | None) -> None:
  """Refuses output paths that would fail only after the whole run.

  Raises:
    ValueError: for a path that is a directory, a plot of an unknown format,
      or a parent directory that cannot be created.
  """
  import os

  for flag, path in (('--out', out), ('--plot', plot)):
    if path is None:
      continue
    if os.path.isdir(path):
      raise ValueError(
        f'`{flag} {path}` is a directory; give a file name inside it.'
      )
    parent = os.path.dirname(os.path.abspath(path))
    ancestor = parent
    while not os.path.exists(ancestor):
      ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor) or not os.access(ancestor, os.W_OK):
      raise ValueError(
        f'`{flag} {path}`: cannot create or write to {parent!r}.'
      )
  if plot is not None and os.path.splitext(plot)[1].lower() not in (
    PLOT_FORMATS
  ):
    raise ValueError(
      f'`--plot {plot}` has an unknown image format; use a name ending in '
      f'{", ".join(PLOT_FORMATS)}.'
    )


def add_checkpoint_flags(parser: argparse.ArgumentParser) -> None:
  """Flags that save a run's state and resume it."""
  add = parser.add_argument
  add('--checkpoint-dir', default=None,
      help='save the run\'s state in this folder every --checkpoint-every '
      'messages, on SIGINT/SIGTERM and at the end')
  add('--checkpoint-every', type=positive_int, default=None,
      help='messages between checkpoints, taken at the next evaluation '
      f'point (default: {DEFAULT_CHECKPOINT_EVERY})')
  add('--resume', action='store_true',
      help='continue from the latest checkpoint in --checkpoint-dir; only '
      '--messages (and output paths) may differ from the saved run')


def checkpointer_from_args(
  args: argparse.Namespace,
) -> SimulationCheckpointer | None:
  """Opens the checkpoint folder and checks it against the flags.

  Raises:
    ValueError: for checkpoint flags without ``--checkpoint-dir``, a folder
      that holds another run's checkpoints (without ``--resume``) or, with
      ``--resume``, none or ones saved with other settings.
  """
  if args.checkpoint_dir is None:
    for flag, value in (
      ('--resume', args.resume),
      ('--checkpoint-every', args.checkpoint_every),
    ):
      if value:
        raise ValueError(
          f'`{flag}` needs `--checkpoint-dir`, the folder of the checkpoints.'
        )
    return None
  checkpointer = SimulationCheckpointer(
    args.checkpoint_dir,
    args.checkpoint_every or DEFAULT_CHECKPOINT_EVERY,
  )
  if args.resume:
    common.check_resumable(args.config, checkpointer)
  elif checkpointer.latest_step() is not None:
    raise ValueError(
      f'`--checkpoint-dir={args.checkpoint_dir!r}` already holds checkpoints '
      f'(latest at message {checkpointer.latest_step()}); pass --resume to '
      'continue that run, or choose an empty folder.'
    )
  return checkpointer


def config_from_args(args: argparse.Namespace) -> common.RunConfig:
  """A validated :class:`RunConfig` from parsed flags.

  Raises:
    ValueError: for settings that are wrong together (checked here, before
      any data is loaded).
  """
  config = common.RunConfig(
    **{
      field.name: getattr(args, field.name)
      for field in common.dataclasses.fields(common.RunConfig)
      if hasattr(args, field.name)
    }
  )
  config.simulation()  # cross-checks, for example stragglers vs workers
  if config.method == 'farsign' and config.directions != 'coordinate':
    if config.num_directions is None:
      raise ValueError(
        f'`--num-directions` is required with --directions '
        f'{config.directions}.'
      )
  if config.train_examples is not None and (
    config.workers > config.train_examples
  ):
    raise ValueError(
      f'`--workers={config.workers}` exceeds `--train-examples='
      f'{config.train_examples}`: every worker needs an example.'
    )
  # Builds the model and the method: k against d, the adversarial fraction
  # against what the method tolerates, before any data is loaded.
  common.build_method(config)
  return config


class ProgressBar:
  """A tqdm bar over messages, fed with curve points."""

  def __init__(self, total: int, enabled: bool, description: str = ''):
    from tqdm.auto import tqdm

    self._bar = tqdm(
      total=total, disable=not enabled, unit='msg', desc=description,
      dynamic_ncols=True,
    )
    self._done = 0

  def __call__(self, point: dict) -> None:
    self._bar.update(point['messages'] - self._done)
    self._done = point['messages']
    self._bar.set_postfix(
      acc=f'{point["accuracy"]:.4f}', vt=f'{point["virtual_time"]:.0f}s'
    )

  def close(self) -> None:
    self._bar.close()


def summary_line(record: dict) -> str:
  def seconds(value):
    return 'never' if value is None else f'{value:.1f} s'

  config = record['config']
  rate = record['messages_per_second']
  rate = 'rate n/a: one chunk' if rate is None else f'{rate:.0f}/s'
  if config['attack'] == 'none':
    adversaries = 'no attack'
  else:
    adversaries = (
      f'adversarial share: workers {record["byzantine_worker_fraction"]:.2f}'
      f', messages {record["byzantine_message_share"]:.3f}'
    )
  return (
    f'{config["method"]} | attack {config["attack"]} | '
    f'final {record["final_accuracy"]:.4f} | '
    f'best {record["best_accuracy"]:.4f} | '
    f'virtual time to 80%: {seconds(record["virtual_time_to_80"])} first, '
    f'{seconds(record["virtual_time_to_80_sustained"])} for good | '
    f'{record["messages"]} messages in {record["real_seconds"]:.1f} s '
    f'({rate}) | {adversaries}'
  )


def main(argv=None) -> int:
  args = parse_args(argv)
  config = args.config
  if config.oracle == 'zeroth_order' and config.directions == 'coordinate':
    print(
      'warning: the zeroth-order oracle with the coordinate design costs two '
      'loss evaluations per parameter for every message (15 700 for '
      'logistic regression); --directions gaussian --num-directions 10 '
      'costs 20.',
      file=sys.stderr,
    )
  try:
    dataset = common.load_data(args.data_dir, config.train_examples)
  except (FileNotFoundError, ValueError, ImportError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  if config.workers > len(dataset.train_labels):
    print(
      f'error: `--workers={config.workers}` exceeds the '
      f'{len(dataset.train_labels)} training examples: every worker needs '
      'an example.',
      file=sys.stderr,
    )
    return 2
  checkpointer = args.checkpointer
  bar = ProgressBar(
    config.messages, not args.no_progress, f'{config.method}/{config.attack}'
  )
  try:
    if checkpointer is None:
      record = common.run(config, dataset, progress=bar)
    else:
      with common.StopOnSignals() as stop:
        record = common.run(
          config, dataset, progress=bar, checkpointer=checkpointer,
          resume=args.resume, stop=stop,
        )
  except checkpoint.CheckpointError as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  except common.Interrupted as interrupt:
    bar.close()
    where = ''
    if checkpointer is not None:
      where = (
        f'; saved in {checkpointer.directory}, continue with the same flags '
        'and --resume'
      )
    print(f'{interrupt}{where}', file=sys.stderr)
    return 128 + interrupt.signum
  finally:
    bar.close()
    if checkpointer is not None:
      checkpointer.close()
  print(summary_line(record))
  if args.out:
    common.write_json_atomically(args.out, record)
  if args.plot:
    plotting.plot_curves({config.method: record}, args.plot,
                         title=f'MNIST, attack: {config.attack}')
  return 0


if __name__ == '__main__':
  sys.exit(main())
