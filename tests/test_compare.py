"""The comparison entry point: flags, outputs, one quick grid."""

import json

import pytest

from experiments import compare


def test_method_and_attack_lists_are_validated(capsys):
  with pytest.raises(SystemExit):
    compare.parse_args(['--methods', 'farsign,nope'])
  assert 'unknown methods nope' in capsys.readouterr().err
  with pytest.raises(SystemExit):
    compare.parse_args(['--attacks', 'none,bogus'])
  args = compare.parse_args(['--quick', '--methods', 'sync_median,farsign'])
  assert [c.method for c in args.configs[:2]] == ['sync_median', 'farsign']
  sync = args.configs[0]
  assert sync.messages == compare.QUICK['sync_messages']
  assert sync.eval_every == compare.QUICK['workers']  # once per round
  assert len(args.configs) == 2 * len(compare.DEFAULT_ATTACKS)


def test_quick_grid_writes_table_json_and_plots(
  mnist_dir, tmp_path, monkeypatch, capsys
):
  monkeypatch.setenv('FARSIGN_DATA_DIR', mnist_dir)
  out = tmp_path / 'compare'
  code = compare.main([
    '--quick', '--no-progress', '--out-dir', str(out),
    '--methods', 'farsign,sync_median', '--attacks', 'none,sign_flip',
  ])
  assert code == 0
  records = json.loads((out / 'results.json').read_text())
  assert [(r['method'], r['attack']) for r in records] == [
    (m, a) for a in ('none', 'sign_flip')
    for m in ('farsign', 'sync_median')
  ]
  for r in records:
    for key in ('final_accuracy', 'best_accuracy', 'virtual_time_to_80',
                'real_seconds'):
      assert key in r
    assert 0.0 <= r['best_accuracy'] <= 1.0
    assert r['final_accuracy'] <= r['best_accuracy']
  # Same clock, same roles: synchronous rounds only use whole rounds.
  sync = [r for r in records if r['method'] == 'sync_median']
  assert all(r['messages'] % compare.QUICK['workers'] == 0 for r in sync)
  table = (out / 'results.md').read_text()
  assert 'sync_median' in table and table.count('\n| ') == 2 + len(records) - 1
  for attack in ('none', 'sign_flip'):
    assert (out / f'accuracy_{attack}.png').stat().st_size > 1000

  # --resume keeps every finished cell and reruns nothing, and a run whose
  # last cells were all kept still writes them.
  capsys.readouterr()
  (out / 'results.json').write_text(json.dumps(records[:2]))
  compare.main([
    '--quick', '--no-progress', '--out-dir', str(out), '--resume',
    '--methods', 'farsign,sync_median', '--attacks', 'none,sign_flip',
  ])
  capsys.readouterr()
  code = compare.main([
    '--quick', '--no-progress', '--out-dir', str(out), '--resume',
    '--methods', 'farsign,sync_median', '--attacks', 'none,sign_flip',
  ])
  assert code == 0
  assert capsys.readouterr().out.count('kept from the previous run') == 4
  kept = json.loads((out / 'results.json').read_text())
  # Cells 3 and 4 were rerun (new timings), deterministically.
  assert [(r['method'], r['attack'], r['final_accuracy']) for r in kept] == [
    (r['method'], r['attack'], r['final_accuracy']) for r in records
  ]


def test_table_marks_methods_that_need_trusted_data():
  record = dict(
    method='zeno', attack='none', needs_trusted_data=True,
    final_accuracy=0.9, best_accuracy=0.91, virtual_time_to_80=None,
    virtual_seconds=10.0, messages=100, real_seconds=1.0,
  )
  table = compare.markdown_table([record])
  assert f'| zeno{compare.TRUSTED_MARK} | 0.9000 | 0.9100 | never |' in table
  assert 'needs trusted data' in table
