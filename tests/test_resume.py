"""Checkpoint and resume: a run killed part way continues bit for bit.

A real process is killed here: ``experiments.mnist`` runs in a subprocess on
a small subset, saving every 50 messages; once its first checkpoint is on
disk it gets SIGKILL (no chance to save), and a second process resumes it.
The resumed run must equal an uninterrupted one exactly, on CPU: same curve
(messages, virtual times, accuracies) and the same final state, leaf for
leaf, bit for bit. The uninterrupted run shares the CPUs concurrently to keep
the test short. What SIGTERM and SIGINT do (save at the next evaluation
point, exit non-zero) is checked in process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import orbax.checkpoint as ocp
import pytest

from experiments import common
from farsign_jax._src.simulator import checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESSAGES = 300
FLAGS = [
  '--train-examples', '1000', '--workers', '12', '--batch-size', '16',
  '--eval-every', '50', '--checkpoint-every', '50', '--attack', 'gaussian',
  '--directions', 'gaussian', '--num-directions', '16', '--no-progress',
  '--messages', str(MESSAGES),
]


def _start(mnist_dir, checkpoint_dir, out, *extra):
  command = [
    sys.executable, '-m', 'experiments.mnist', '--data-dir', str(mnist_dir),
    *FLAGS, '--checkpoint-dir', str(checkpoint_dir), '--out', str(out),
    *extra,
  ]
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  return subprocess.Popen(
    command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
    stderr=subprocess.PIPE, text=True,
  )


def _steps(directory):
  """Committed orbax steps (unfinished ones carry a temporary suffix)."""
  if not os.path.isdir(directory):
    return []
  return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def _wait_for_checkpoint(process, directory, timeout=180.0):
  deadline = time.monotonic() + timeout
  while not _steps(directory):
    if process.poll() is not None:
      raise AssertionError(
        f'the run ended before its first checkpoint: {process.stderr.read()}'
      )
    if time.monotonic() > deadline:
      process.kill()
      raise AssertionError('no checkpoint appeared in time')
    time.sleep(0.02)


def _final_state(directory):
  manager = ocp.CheckpointManager(str(directory))
  step = manager.latest_step()
  restored = manager.restore(
    step, args=ocp.args.Composite(state=ocp.args.StandardRestore())
  )['state']
  manager.close()
  return step, {name: np.asarray(leaf) for name, leaf in restored.items()}


@pytest.fixture(scope='module')
def runs(mnist_dir, tmp_path_factory):
  base = tmp_path_factory.mktemp('resume')
  full = _start(mnist_dir, base / 'full', base / 'full.json')
  killed = _start(mnist_dir, base / 'killed', base / 'killed.json')
  _wait_for_checkpoint(killed, base / 'killed')
  killed.send_signal(signal.SIGKILL)
  _, stderr = killed.communicate(timeout=180)
  outcome = (killed.returncode, stderr, _steps(base / 'killed'))

  resumed = _start(
    mnist_dir, base / 'killed', base / 'killed.json', '--resume'
  )
  for name, process in (('full', full), ('resumed', resumed)):
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, (name, stderr)
  return base, outcome


@pytest.mark.slow
def test_killed_run_resumes_bitwise(runs):
  base, (returncode, stderr, steps) = runs
  # It really was killed part way, after saving at least once.
  assert returncode == -signal.SIGKILL, stderr
  assert steps and max(steps) < MESSAGES

  full = json.loads((base / 'full.json').read_text())
  resumed = json.loads((base / 'killed.json').read_text())
  for key in ('messages', 'virtual_time', 'accuracy'):
    assert [p[key] for p in resumed['curve']] == [
      p[key] for p in full['curve']
    ]
  assert resumed['config'] == full['config']
  for key in ('final_accuracy', 'byzantine_message_share', 'mean_staleness'):
    assert resumed[key] == full[key]

  full_step, full_state = _final_state(base / 'full')
  step, state = _final_state(base / 'killed')
  assert step == full_step == MESSAGES
  assert state.keys() == full_state.keys()
  for leaf in full_state:
    np.testing.assert_array_equal(state[leaf], full_state[leaf], err_msg=leaf)


def test_stop_request_saves_then_resumes_exactly(tiny_dataset, tmp_path):
  # What SIGTERM does, in process: the run stops at its next evaluation
  # point, saves, raises; the resumed run equals an uninterrupted one.
  config = common.RunConfig(
    workers=6, batch_size=8, messages=40, eval_every=20, attack='gaussian',
  )
  full = common.run(config, tiny_dataset)

  checkpointer = checkpoint.SimulationCheckpointer(tmp_path, every=1000)
  stop = common.StopOnSignals()
  stop.signum = signal.SIGTERM
  with pytest.raises(common.Interrupted, match='SIGTERM at message 2'):
    common.run(config, tiny_dataset, checkpointer=checkpointer, stop=stop)
  assert checkpointer.latest_step() == 2  # the first evaluation point
  assert common.check_resumable(config, checkpointer) == 2
  resumed = common.run(
    config, tiny_dataset, checkpointer=checkpointer, resume=True
  )
  checkpointer.close()
  for key in ('messages', 'virtual_time', 'accuracy'):
    assert [p[key] for p in resumed['curve']] == [
      p[key] for p in full['curve']
    ]


def test_signals_request_a_stop_then_force_one():
  with common.StopOnSignals() as stop:
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop.signum == signal.SIGTERM
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.slow
def test_keeps_only_the_last_two_checkpoints(runs):
  base, _ = runs
  assert _steps(base / 'full') == [MESSAGES - 50, MESSAGES]


@pytest.mark.slow
def test_resume_refuses_other_settings(runs, capsys):
  base, _ = runs
  from experiments import mnist

  argv = [
    '--data-dir', 'unused', *FLAGS, '--checkpoint-dir', str(base / 'full'),
    '--resume', '--seed', '7',
  ]
  with pytest.raises(SystemExit) as exit_info:
    mnist.parse_args(argv)
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert 'seed: 0 -> 7' in err and 'Only --messages may change' in err


def test_settings_differences_ignores_the_budget():
  saved = common.RunConfig(messages=100).resolved()
  requested = common.RunConfig(messages=900).resolved()
  assert checkpoint.settings_differences(
    saved, requested, common.RESUMABLE_CHANGES
  ) == []
  other = common.RunConfig(messages=900, stragglers=0.0).resolved()
  assert checkpoint.settings_differences(
    saved, other, common.RESUMABLE_CHANGES
  ) == ['stragglers: 0.1 -> 0.0']


def test_corrupted_checkpoint_is_a_clear_error(mnist_dir, tmp_path, capsys):
  from experiments import mnist

  flags = [
    '--data-dir', mnist_dir, '--train-examples', '2000', '--workers', '10',
    '--eval-every', '50', '--checkpoint-dir', str(tmp_path / 'ck'),
    '--checkpoint-every', '50', '--no-progress',
  ]
  assert mnist.main(flags + ['--messages', '100']) == 0
  last = max((tmp_path / 'ck').iterdir(), key=lambda p: int(p.name))
  for path in (last / 'state').rglob('*'):
    if path.is_file() and path.stat().st_size > 100:
      path.write_bytes(path.read_bytes()[:10])
  capsys.readouterr()
  assert mnist.main(flags + ['--messages', '150', '--resume']) == 2
  error = capsys.readouterr().err
  assert 'cannot be read' in error and str(tmp_path / 'ck') in error
