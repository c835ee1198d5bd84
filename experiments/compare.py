"""The paper's comparison: methods against attacks, one clock, one split.

Example:
  python -m experiments.compare --data-dir ../shared/data/mnist
  python -m experiments.compare --quick --methods farsign,sync_median \
      --attacks none,sign_flip

Runs every method under every attack with the same seed, data split, worker
roles and virtual clock, and writes to ``--out-dir``:

* ``results.json``: one record per cell (method, attack, final and best
  accuracy, virtual time to 80 %, real seconds, the curve, every setting),
  rewritten after each cell so that a crash loses nothing;
* ``results.md``: the table, methods that need trusted server data marked;
* ``accuracy_<attack>.png``: test accuracy against virtual time, all methods.

Asynchronous methods run ``--messages`` messages; synchronous ones
``--sync-messages`` (a round of ``N`` workers uses ``N`` messages and lasts
until its slowest worker, so they need fewer messages and more virtual time).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from experiments import common, flags, mnist, plotting
from farsign_jax._src.attacks import ATTACKS
from farsign_jax._src.methods.registry import METHODS

DEFAULT_METHODS = (
  'farsign',
  'async_sgd',
  'sync_mean',
  'sync_median',
  'sync_trimmed_mean',
  'sync_multi_krum',
  'sync_geomed',
  'sync_cclip',
  'basgd',
  'kardam',
)
DEFAULT_ATTACKS = ('none', 'sign_flip', 'gaussian', 'alie', 'ipm', 'label_flip')
TRUSTED_MARK = '†'

# Settings of --quick: small enough for a test, same grid.
QUICK = dict(
  train_examples=2000,
  workers=20,
  messages=400,
  sync_messages=200,
  batch_size=32,
  eval_every=100,
)


def name_list(known, kind: str):
  """An argparse type: a comma list of names, each one of ``known``."""

  def parse(text: str) -> list[str]:
    names = [name.strip() for name in text.split(',') if name.strip()]
    if not names:
      raise argparse.ArgumentTypeError(f'expected a comma list of {kind}')
    unknown = [name for name in names if name not in known]
    if unknown:
      raise argparse.ArgumentTypeError(
        f'unknown {kind} {", ".join(unknown)}; known: '
        f'{", ".join(sorted(known))}'
      )
    return list(dict.fromkeys(names))

  return parse


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    prog='python -m experiments.compare',
    description='FAR-SIGN against robust-aggregation baselines on MNIST, '
    'every method under every attack.',
  )
  parser.add_argument(
    '--methods', type=name_list(METHODS, 'methods'),
    default=list(DEFAULT_METHODS),
    help='comma list of methods (default: %(default)s)',
  )
  parser.add_argument(
    '--attacks', type=name_list(ATTACKS, 'attacks'),
    default=list(DEFAULT_ATTACKS),
    help='comma list of attacks (default: %(default)s)',
  )
  mnist.add_run_flags(parser)
  parser.set_defaults(messages=20_000, eval_every=200)
  parser.add_argument(
    '--sync-messages', type=flags.positive_int, default=10_000,
    help='messages of synchronous methods (default: %(default)s); they '
    'evaluate after every round',
  )
  parser.add_argument('--out-dir', default=os.path.join('results', 'compare'))
  parser.add_argument(
    '--resume', action='store_true',
    help='keep the cells already in OUT_DIR/results.json whose settings '
    'match, and run only the others',
  )
  parser.add_argument(
    '--quick', action='store_true',
    help='the same grid, small enough for a test; overrides '
    + ', '.join(f'{k}={v}' for k, v in QUICK.items()),
  )
  args = parser.parse_args(argv)
  if args.quick:
    for name, value in QUICK.items():
      setattr(args, name, value)
  try:
    args.configs = [
      cell_config(args, method, attack)
      for attack in args.attacks
      for method in args.methods
    ]
  except ValueError as error:
    parser.error(str(error))
  return args


def cell_config(
  args: argparse.Namespace, method: str, attack: str
) -> common.RunConfig:
  """The :class:`RunConfig` of one cell, validated before data is loaded."""
  cell = argparse.Namespace(**vars(args))
  cell.method = method
  cell.attack = attack
  if METHODS[method].synchronous:
    cell.messages = args.sync_messages
    cell.eval_every = args.workers  # one evaluation per round
  config = mnist.config_from_args(cell)
  common.make_attack(config)
  return config


def cell_record(record: dict) -> dict:
  """The fields of one cell that the table and the plots read."""
  config = record['config']
  spec = METHODS[config['method']]
  return {
    'method': config['method'],
    'attack': config['attack'],
    'synchronous': spec.synchronous,
    'needs_trusted_data': spec.needs_trusted_data,
  } | {key: value for key, value in record.items() if key != 'config'} | {
    'config': config
  }


def _format_time(seconds) -> str:
  return 'never' if seconds is None else f'{seconds:.1f}'


def markdown_table(records: list[dict]) -> str:
  """The results as a Markdown table, one row per cell."""
  lines = [
    '| attack | method | final acc. | best acc. | virtual s to 80 % '
    '| to 80 % for good | virtual s | messages | real s |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for r in records:
    mark = TRUSTED_MARK if r['needs_trusted_data'] else ''
    lines.append(
      f'| {r["attack"]} | {r["method"]}{mark} | {r["final_accuracy"]:.4f} '
      f'| {r["best_accuracy"]:.4f} | {_format_time(r["virtual_time_to_80"])} '
      f'| {_format_time(r.get("virtual_time_to_80_sustained"))} '
      f'| {r["virtual_seconds"]:.1f} | {r["messages"]} '
      f'| {r["real_seconds"]:.1f} |'
    )
  notes = [
    '',
    f'{TRUSTED_MARK} needs trusted data at the server; the other methods '
    'do not.',
    'Synchronous methods (`sync_*`) wait for every live worker each round; '
    'virtual seconds are on the same clock for every method.',
    '"to 80 % for good": the first evaluation from which the accuracy never '
    'falls below 80 % again.',
  ]
  return '\n'.join(lines + notes) + '\n'


def previous_cells(out_dir: str) -> dict:
  """Cells of an earlier run in ``out_dir``, keyed by their settings."""
  path = os.path.join(out_dir, 'results.json')
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    records = json.load(f)
  return {json.dumps(r['config'], sort_keys=True): r for r in records}


def write_outputs(out_dir: str, records: list[dict]) -> None:
  """Writes ``results.json`` (atomically) and ``results.md``."""
  common.write_json_atomically(os.path.join(out_dir, 'results.json'), records)
  path = os.path.join(out_dir, 'results.md')
  temporary = path + '.tmp'
  with open(temporary, 'w') as f:
    f.write(markdown_table(records))
  os.replace(temporary, path)


def plot_attack(out_dir: str, attack: str, records: list[dict]) -> str:
  """One PNG of the attack's accuracy curves; returns its path."""
  path = os.path.join(out_dir, f'accuracy_{attack}.png')
  plotting.plot_curves(
    {
      r['method'] + (TRUSTED_MARK if r['needs_trusted_data'] else ''): r
      for r in records
      if r['attack'] == attack
    },
    path,
    title=f'MNIST, attack: {attack}',
  )
  return path


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    dataset = common.load_data(args.data_dir, args.train_examples)
  except (FileNotFoundError, ValueError, ImportError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  done = previous_cells(args.out_dir) if args.resume else {}
  records = []
  total = len(args.configs)
  for index, config in enumerate(args.configs):
    settings = json.dumps(config.resolved(), sort_keys=True)
    if settings in done:
      records.append(done[settings])
      write_outputs(args.out_dir, records)
      plot_attack(args.out_dir, config.attack, records)
      print(f'[{index + 1}/{total}] {config.method}/{config.attack}: kept '
            'from the previous run', flush=True)
      continue
    bar = mnist.ProgressBar(
      config.messages,
      not args.no_progress,
      f'[{index + 1}/{total}] {config.method}/{config.attack}',
    )
    try:
      record = common.run(config, dataset, progress=bar)
    finally:
      bar.close()
    records.append(cell_record(record))
    write_outputs(args.out_dir, records)
    plot_attack(args.out_dir, config.attack, records)
    print(mnist.summary_line(record), flush=True)
  print(f'wrote {os.path.join(args.out_dir, "results.md")}')
  return 0


if __name__ == '__main__':
  sys.exit(main())


__all__ = ['DEFAULT_ATTACKS', 'DEFAULT_METHODS', 'main', 'parse_args']
