"""The scaling benchmark: its grid, its workers and one tiny measured case."""

import json

import jax
import numpy as np
import pytest

from experiments import scaling
from farsign_jax._src.simulator import engine


def test_default_grid_and_full_grid():
  args = scaling.parse_args([])
  cases = scaling.grid(args)
  assert [c.workers for c in cases] == [10, 100, 1000, 10000] * 2
  assert {c.staleness_mode for c in cases} == {'snapshot', 'ring'}
  assert {(c.oracle, c.directions, c.model) for c in cases} == {
    ('first_order', 'coordinate', 'logreg')
  }
  full = scaling.grid(scaling.parse_args(['--full', '--workers', '10']))
  assert len(full) == 2 * 2 * 2 * 2  # modes x oracles x designs x models
  large = scaling.grid(
    scaling.parse_args(['--workers', '10', '--staleness', 'snapshot',
                        '--large'])
  )
  assert [(c.workers, c.staleness_mode) for c in large] == [
    (10, 'snapshot'), (scaling.LARGE_WORKERS, 'ring')
  ]


@pytest.mark.parametrize('flag', ['--workers=0', '--batch-size=-3',
                                  '--seconds=nan', '--staleness=fifo'])
def test_bad_flags_are_refused(flag, capsys):
  with pytest.raises(SystemExit):
    scaling.parse_args([flag])
  assert 'error' in capsys.readouterr().err


def test_more_workers_than_examples_share_shards(tiny_dataset, logreg):
  args = scaling.parse_args(['--batch-size', '4', '--max-staleness', '16'])
  case = scaling.Case(1500, 'ring', 'first_order', 'coordinate', 'logreg')
  workers = scaling.build_workers(
    scaling.run_config(case, args), logreg, tiny_dataset
  )
  # 600 examples: worker w samples from shard w mod 600.
  indices = np.asarray(workers.shards.indices)
  assert indices.shape[0] == 1500
  np.testing.assert_array_equal(indices[1200], indices[0])
  assert workers.byzantine.shape == (1500,)
  # It runs: every worker's first arrival is a finite time.
  state = engine.init_state(workers)
  state = engine.make_runner(workers)(state, jax.numpy.int32(40))
  assert int(state.version) == 40


def test_ceiling_computes_the_workers_messages(tiny_dataset, logreg):
  args = scaling.parse_args(['--batch-size', '4'])
  case = scaling.Case(20, 'snapshot', 'first_order', 'coordinate', 'logreg')
  workers = scaling.build_workers(
    scaling.run_config(case, args), logreg, tiny_dataset
  )
  ceiling = scaling.Ceiling(workers, width=3, seed=0)
  out = np.asarray(ceiling())
  row = int(ceiling.rows[1])
  expected = workers.honest_message(
    workers.init_params, jax.numpy.int32(row), jax.numpy.int32(1)
  )
  assert out.shape == (3, logreg.num_params)
  # Row 1 of the first call is message id 1 of its worker: the same
  # computation unbatched, equal up to float32 summation order (1e-6).
  np.testing.assert_allclose(out[1], expected, atol=1e-6)


def test_measure_one_case_writes_a_complete_record(
  tiny_dataset, logreg, tmp_path
):
  args = scaling.parse_args([
    '--batch-size', '4', '--seconds', '0.05', '--repeats', '1',
    '--loop-messages', '10', '--ceiling-widths', '8',
  ])
  case = scaling.Case(16, 'snapshot', 'first_order', 'coordinate', 'logreg')
  record = scaling.measure(case, args, logreg, tiny_dataset, mesh=None)
  for key in ('messages_per_second', 'ceiling_messages_per_second',
              'loop_messages_per_second', 'compile_seconds',
              'peak_memory_bytes'):
    assert record[key] > 0, key
  assert record['peak_memory_source'] in (
    'device_memory_stats', 'process_peak_rss'
  )
  assert 0 < record['mean_tick_fill'] <= record['tick_size']
  assert record['skipped'] is None
  assert scaling.table_row(record).split()[0] == '16'
  path = tmp_path / 'r.json'
  scaling.common.write_json_atomically(str(path), [record])
  assert json.loads(path.read_text())[0]['workers'] == 16


def test_oversized_buffers_are_skipped_not_run(tiny_dataset, logreg):
  args = scaling.parse_args(['--max-state-gb', '0.001'])
  case = scaling.Case(500, 'snapshot', 'first_order', 'coordinate', 'logreg')
  record = scaling.measure(case, args, logreg, tiny_dataset, mesh=None)
  assert 'max-state-gb' in record['skipped']
  assert record['messages_per_second'] is None


def test_bad_benchmark_input_is_a_usage_error(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    scaling.parse_args(['--workers', '10', '--tick-size', '100'])
  assert exit_info.value.code == 2
  assert '--tick-size 100' in capsys.readouterr().err
  code = scaling.main(['--workers', '10', '--data-dir', str(tmp_path)])
  assert code == 2
  assert 'missing' in capsys.readouterr().err
