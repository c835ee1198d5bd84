"""Soak test: a long FAR-SIGN run whose resident memory must stay flat.

Example:
  python -m experiments.soak --data-dir ../shared/data/mnist

Runs logistic regression with FAR-SIGN for 1 000 000 messages from 1 000
workers (by default), samples the process's resident memory (RSS) every
``--interval`` messages, and checks that it stays flat once warmed up: after
the first ``--warmup`` share of the messages, RSS may grow by at most
``--margin-mb`` megabytes or ``--margin-percent`` percent of its value at the
end of the warm-up, whichever is larger. Prints every sample and a PASS or
FAIL line with the figures; exits with status 1 on FAIL.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

from experiments import common
from experiments.flags import fraction, positive_float, positive_int, seed

MB = 2**20


def resident_bytes() -> int:
  """The current resident set size of this process, in bytes.

  Reads ``/proc/self/statm``; where there is none, falls back to the peak
  RSS that ``getrusage`` reports (an upper bound of the current one).
  """
  try:
    with open('/proc/self/statm') as f:
      pages = int(f.read().split()[1])
    return pages * os.sysconf('SC_PAGE_SIZE')
  except (OSError, ValueError, IndexError):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * (1 if sys.platform == 'darwin' else 1024)


def verdict(
  samples: list[tuple[int, int]],
  total: int,
  warmup: float,
  margin_mb: float,
  margin_percent: float,
) -> dict:
  """Judges whether memory stayed flat after the warm-up.

  Args:
    samples: ``(messages, rss_bytes)`` in the order taken.
    total: the run's message budget.
    warmup: share of ``total`` that counts as warm-up.
    margin_mb: growth always allowed, in MiB.
    margin_percent: growth allowed, in percent of the baseline.

  Returns:
    A dict with ``passed``, ``baseline_mb`` (RSS at the first sample after
    the warm-up), ``peak_mb`` and ``final_mb`` (after the warm-up),
    ``growth_mb`` (peak minus baseline) and ``allowed_mb``.

  Raises:
    ValueError: if no sample was taken after the warm-up.
  """
  after = [rss for messages, rss in samples if messages >= warmup * total]
  if not after:
    raise ValueError(
      f'No memory sample after the warm-up ({warmup:.0%} of {total} '
      'messages); lower `--interval`.'
    )
  baseline, peak = after[0], max(after)
  allowed = max(margin_mb * MB, margin_percent / 100 * baseline)
  growth = peak - baseline
  return {
    'passed': growth <= allowed,
    'baseline_mb': baseline / MB,
    'peak_mb': peak / MB,
    'final_mb': after[-1] / MB,
    'growth_mb': growth / MB,
    'allowed_mb': allowed / MB,
    'samples_after_warmup': len(after),
  }


def parse_args(argv=None) -> argparse.Namespace:
  parser = argparse.ArgumentParser(
    prog='python -m experiments.soak',
    description='A long FAR-SIGN run that checks resident memory stays flat.',
  )
  add = parser.add_argument
  add('--messages', type=positive_int, default=1_000_000)
  add('--workers', type=positive_int, default=1000)
  add('--interval', type=positive_int, default=50_000,
      help='messages between memory samples (default: %(default)s)')
  add('--warmup', type=fraction, default=0.1,
      help='share of the messages before the baseline (default: %(default)s)')
  add('--margin-mb', type=positive_float, default=50.0,
      help='RSS growth always allowed, MiB (default: %(default)s)')
  add('--margin-percent', type=positive_float, default=5.0,
      help='RSS growth allowed, percent of the baseline '
      '(default: %(default)s)')
  add('--batch-size', type=positive_int, default=32)
  add('--attack', default='sign_flip', help='(default: %(default)s)')
  add('--seed', type=seed, default=0)
  add('--data-dir', default=None,
      help='folder with the four MNIST IDX files; default: $FARSIGN_DATA_DIR')
  add('--out', default=None, help='JSON file for the samples and verdict')
  args = parser.parse_args(argv)
  after_warmup = args.messages * (1 - args.warmup)
  if args.interval * 2 > after_warmup:
    parser.error(
      f'`--interval={args.interval}` leaves fewer than two memory samples '
      f'after the warm-up ({after_warmup:.0f} messages); use at most '
      f'{int(after_warmup // 2)}.'
    )
  try:
    args.config = common.RunConfig(
      workers=args.workers, messages=args.messages,
      eval_every=args.interval, batch_size=args.batch_size,
      attack=args.attack, seed=args.seed,
    )
    args.config.simulation()
    common.make_attack(args.config)
    common.build_method(args.config)
  except ValueError as error:
    parser.error(str(error))
  return args


def main(argv=None) -> int:
  args = parse_args(argv)
  try:
    dataset = common.load_data(args.data_dir)
  except (FileNotFoundError, ValueError, ImportError) as error:
    print(f'error: {error}', file=sys.stderr)
    return 2
  samples = [(0, resident_bytes())]
  start = time.perf_counter()
  print(f'{"messages":>10} {"rss MiB":>9} {"seconds":>8} {"accuracy":>8}')

  def sample(point):
    rss = resident_bytes()
    samples.append((point['messages'], rss))
    print(
      f'{point["messages"]:>10} {rss / MB:>9.1f} '
      f'{time.perf_counter() - start:>8.1f} {point["accuracy"]:>8.4f}',
      flush=True,
    )

  record = common.run(args.config, dataset, progress=sample)
  result = verdict(
    samples, args.messages, args.warmup, args.margin_mb, args.margin_percent
  )
  status = 'PASS' if result['passed'] else 'FAIL'
  print(
    f'{status}: RSS {result["baseline_mb"]:.1f} MiB after the warm-up, '
    f'peak {result["peak_mb"]:.1f}, final {result["final_mb"]:.1f}; growth '
    f'{result["growth_mb"]:+.1f} MiB, allowed {result["allowed_mb"]:.1f} | '
    f'{record["messages"]} messages from {args.workers} workers in '
    f'{record["real_seconds"]:.0f} s ({record["messages_per_second"]:.0f}/s), '
    f'final accuracy {record["final_accuracy"]:.4f}'
  )
  if args.out:
    common.write_json_atomically(
      args.out,
      {
        'verdict': result,
        'samples': [{'messages': m, 'rss_mb': r / MB} for m, r in samples],
        'run': {k: v for k, v in record.items() if k != 'curve'},
      },
    )
  return 0 if result['passed'] else 1


if __name__ == '__main__':
  sys.exit(main())
