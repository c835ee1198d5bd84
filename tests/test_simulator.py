"""The vmapped engine against the plain loop backend, and the event logic."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import farsign_jax as fs
from farsign_jax._src.simulator import driver, engine, loop
from farsign_jax._src.simulator.clock import ComputeTimeModel
from farsign_jax._src.simulator.config import SimulationConfig


def _workers(
  tiny_dataset, logreg, method='farsign', attack='sign_flip', **config
):
  settings = dict(
    num_workers=12,
    byzantine_fraction=0.25,
    straggler_fraction=0.25,
    batch_size=8,
    seed=3,
  )
  settings.update(config)
  cfg = SimulationConfig(**settings)
  if method == 'farsign':
    m = fs.far_sign_method(logreg.num_params, 0.3, 0.01)
  elif method == 'farsign_gaussian':
    m = fs.far_sign_method(logreg.num_params, 0.3, 0.01, 'gaussian', 5)
  else:
    m = fs.async_sgd_method(logreg.num_params, 0.1)
  return driver.build_workers(
    m, fs.make_attack(attack), cfg, logreg, tiny_dataset
  )


def _run_engine(workers, num_messages):
  state = engine.init_state(workers)
  records = []
  run_tick = jax.jit(engine.tick)
  while int(state.version) < num_messages:
    state, record = run_tick(workers, state, jnp.int32(num_messages))
    valid = np.asarray(record.valid)
    for name in ('workers', 'message_ids', 'staleness', 'arrival_time'):
      records.append((name, np.asarray(getattr(record, name))[valid]))
  trace = {
    name: np.concatenate([r for n, r in records if n == name])
    for name in ('workers', 'message_ids', 'staleness', 'arrival_time')
  }
  return state, trace


CASES = [
  dict(),
  dict(attack='nan'),
  dict(attack='silence'),
  dict(method='async_sgd', attack='none'),
  dict(method='farsign_gaussian', attack='gaussian'),
  dict(staleness='ring', max_staleness=6, tick_size=4),
  dict(compute_time=ComputeTimeModel('fixed')),
  dict(compute_time=ComputeTimeModel('lognormal'), tick_size=12),
]


@pytest.mark.parametrize(
  'case',
  CASES,
  ids=lambda c: (
    ','.join(f'{k}={getattr(v, "kind", v)}' for k, v in c.items()) or 'default'
  ),
)
def test_engine_matches_loop_backend(tiny_dataset, logreg, case):
  workers = _workers(tiny_dataset, logreg, **case)
  num = 60
  state, trace = _run_engine(workers, num)
  server, loop_trace = loop.run_loop(workers, num)
  # Same events in the same order.
  np.testing.assert_array_equal(trace['workers'], loop_trace.workers)
  np.testing.assert_array_equal(trace['message_ids'], loop_trace.message_ids)
  np.testing.assert_array_equal(trace['staleness'], loop_trace.staleness)
  np.testing.assert_array_equal(
    trace['arrival_time'], np.float32(loop_trace.arrival_time)
  )
  # Same parameters. A batched and an unbatched gradient may differ in the
  # last bits; FAR-SIGN takes signs of residuals, so a flip moves one
  # coordinate by 2 * alpha * beta at most: 1e-4 leaves room for a few.
  np.testing.assert_allclose(
    workers.method.params(state.server),
    workers.method.params(server),
    atol=1e-4,
  )


def test_staleness_counts_updates_between_read_and_message(
  tiny_dataset, logreg
):
  workers = _workers(tiny_dataset, logreg, num_workers=16, tick_size=5)
  _, trace = _run_engine(workers, 200)
  last_read = {}
  for worker, n, tau in zip(
    trace['workers'], trace['message_ids'], trace['staleness'], strict=True
  ):
    read = last_read.get(worker, 0)  # everyone reads version 0 first
    assert tau == n - read
    last_read[worker] = n + 1
  # Events come in time order and message ids are consecutive.
  assert np.all(np.diff(trace['arrival_time']) >= 0)
  np.testing.assert_array_equal(trace['message_ids'], np.arange(200))


def test_ring_mode_caps_staleness(tiny_dataset, logreg):
  workers = _workers(
    tiny_dataset, logreg, staleness='ring', max_staleness=5, tick_size=3
  )
  _, trace = _run_engine(workers, 120)
  assert trace['staleness'].max() == 5
  exact = _workers(tiny_dataset, logreg)
  _, exact_trace = _run_engine(exact, 120)
  np.testing.assert_array_equal(
    trace['staleness'], np.minimum(exact_trace['staleness'], 5)
  )


def test_event_schedule_does_not_depend_on_tick_size(tiny_dataset, logreg):
  small = _workers(tiny_dataset, logreg, tick_size=2)
  large = _workers(tiny_dataset, logreg, tick_size=12)
  s1, t1 = _run_engine(small, 80)
  s2, t2 = _run_engine(large, 80)
  np.testing.assert_array_equal(t1['workers'], t2['workers'])
  assert int(s2.ticks) < int(s1.ticks)


def test_silent_adversaries_never_send(tiny_dataset, logreg):
  workers = _workers(tiny_dataset, logreg, attack='silence')
  _, trace = _run_engine(workers, 50)
  byzantine = np.asarray(workers.byzantine)
  assert not byzantine[trace['workers']].any()


def test_adversaries_message_share_is_reported(tiny_dataset, logreg):
  workers = _workers(tiny_dataset, logreg)
  evaluate = lambda p: 0.0
  result = driver.simulate(workers, 120, evaluate, eval_every=60)
  _, trace = _run_engine(workers, 120)
  share = np.asarray(workers.byzantine)[trace['workers']].mean()
  assert result.summary()['byzantine_message_share'] == pytest.approx(share)
  # Ten evaluations in the first `eval_every` messages, then one per 60.
  assert [p['messages'] for p in result.curve] == list(range(6, 60, 6)) + [
    60, 120]


def test_method_tolerance_is_enforced(tiny_dataset, logreg):
  with pytest.raises(ValueError, match='byzantine_fraction'):
    _workers(
      tiny_dataset, logreg, byzantine_fraction=0.5, straggler_fraction=0.0
    )


def test_time_to_accuracy_first_and_sustained():
  accuracies = [0.5, 0.81, 0.7, 0.85, 0.9]
  curve = [{'accuracy': a, 'virtual_time': float(t)}
           for t, a in enumerate(accuracies)]
  result = driver.SimulationResult(None, curve, 0.0, 0.0)
  assert result.virtual_time_to(0.8) == 1.0
  assert result.virtual_time_to(0.8, sustained=True) == 3.0
  assert result.virtual_time_to(0.95) is None
  assert result.virtual_time_to(0.95, sustained=True) is None
