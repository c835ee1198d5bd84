"""Same seed, same bits; another seed, another run; no global random state."""

import os
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import farsign_jax as fs
from farsign_jax._src.simulator import driver, engine
from farsign_jax._src.simulator.config import SimulationConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MESSAGES = 60


def _workers(tiny_dataset, logreg, seed):
  """Randomness everywhere: directions, attack noise, clock, data, roles."""
  config = SimulationConfig(
    num_workers=10, byzantine_fraction=0.3, straggler_fraction=0.2,
    batch_size=8, tick_size=4, seed=seed,
  )
  method = fs.far_sign_method(
    logreg.num_params, 0.3, 0.01, 'gaussian', 6, seed=seed
  )
  return driver.build_workers(
    method, fs.make_attack('gaussian'), config, logreg, tiny_dataset
  )


def _simulate(workers, tiny_dataset, logreg):
  images = jnp.asarray(tiny_dataset.test_images.reshape(-1, 784) / 255.0)
  evaluate = jax.jit(
    lambda p: logreg.accuracy(p, images, tiny_dataset.test_labels)
  )
  return driver.simulate(workers, MESSAGES, evaluate, eval_every=20)


_tick = jax.jit(engine.tick)


def _trace(workers):
  """Workers, staleness and arrival-time bits of every message, in order."""
  state, trace = engine.init_state(workers), []
  while int(state.version) < MESSAGES:
    state, record = _tick(workers, state, jnp.int32(MESSAGES))
    valid = np.asarray(record.valid)
    trace.append(
      np.stack([
        np.asarray(record.workers)[valid],
        np.asarray(record.staleness)[valid],
        np.asarray(record.arrival_time)[valid].view(np.int32),
      ])
    )
  return np.concatenate(trace, axis=1)


@pytest.fixture(scope='module')
def runs(tiny_dataset, logreg):
  # Each seed compiles once; the repeat reuses the executable, so what it
  # checks is that no state survives between runs (a global generator, a
  # cached key). That two processes agree is checked by test_resume, whose
  # resumed process reproduces another process's run bit for bit.
  workers = _workers(tiny_dataset, logreg, seed=5)
  other = _workers(tiny_dataset, logreg, seed=6)
  return {
    'a': (_simulate(workers, tiny_dataset, logreg), _trace(workers)),
    'b': (_simulate(workers, tiny_dataset, logreg), _trace(workers)),
    'other': _simulate(other, tiny_dataset, logreg),
  }


def test_same_seed_gives_identical_bits(runs):
  (first, trace_a), (second, trace_b) = runs['a'], runs['b']
  leaves_a = jax.tree.leaves(first.state)
  leaves_b = jax.tree.leaves(second.state)
  assert len(leaves_a) == len(leaves_b)
  for x, y in zip(leaves_a, leaves_b, strict=True):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
  for key in ('messages', 'virtual_time', 'accuracy'):
    assert [p[key] for p in first.curve] == [p[key] for p in second.curve]
  np.testing.assert_array_equal(trace_a, trace_b)
  assert trace_a.shape[1] == MESSAGES
  # The trace is the one the simulation followed.
  assert float(first.state.clock) == trace_a[2, -1].view(np.float32)


def test_another_seed_gives_another_run(runs):
  (first, _), other = runs['a'], runs['other']
  for field in ('arrival_time', 'jobs'):  # the event schedule
    assert not np.array_equal(
      getattr(first.state, field), getattr(other.state, field)
    )
  assert not np.array_equal(
    first.state.server.params, other.state.server.params
  )


# Calls that draw from (or seed) a process-wide generator. Generators built
# from a seed (default_rng, Generator, SeedSequence, bit generators) are fine.
_GLOBAL_RANDOM = [
  re.compile(r'\bnp\.random\.seed\('),
  re.compile(r'\bnumpy\.random\.seed\('),
  re.compile(
    r'\b(?:np|numpy)\.random\.(?!default_rng|Generator|SeedSequence|PCG64'
    r'|Philox|SFC64|MT19937|BitGenerator)\w+\('
  ),
  re.compile(r'^\s*import random\b', re.MULTILINE),
  re.compile(r'^\s*from random import\b', re.MULTILINE),
  re.compile(r'\btf\.random\.set_seed\('),
]


def _python_files():
  for folder in ('farsign_jax', 'experiments', 'tests'):
    for directory, _, names in os.walk(os.path.join(ROOT, folder)):
      for name in names:
        if name.endswith('.py'):
          yield os.path.join(directory, name)


def test_no_global_random_state():
  offenders = []
  this_file = os.path.abspath(__file__)
  for path in _python_files():
    if path == this_file:
      continue
    with open(path, encoding='utf-8') as f:
      text = f.read()
    for pattern in _GLOBAL_RANDOM:
      for match in pattern.finditer(text):
        line = text.count('\n', 0, match.start()) + 1
        offenders.append(f'{os.path.relpath(path, ROOT)}:{line}: '
                         f'{match.group().strip()}')
  assert not offenders, '\n'.join(offenders)


def test_the_scan_catches_a_global_draw():
  # The patterns must not be vacuous.
  bad = 'x = np.random.normal(size=3)\nimport random\nnp.random.seed(0)\n'
  assert sum(bool(p.search(bad)) for p in _GLOBAL_RANDOM) >= 3
  good = 'rng = np.random.default_rng(0)\nnp.random.SeedSequence([1])\n'
  assert not any(p.search(good) for p in _GLOBAL_RANDOM)
