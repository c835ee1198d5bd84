"""Baseline methods: synchronous rounds and the asynchronous robust methods."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import farsign_jax as fs
from farsign_jax._src.methods import registry
from farsign_jax._src.methods.basgd import basgd_method
from farsign_jax._src.methods.kardam import kardam_method
from farsign_jax._src.methods.synchronous import synchronous_method
from farsign_jax._src.methods.weighted_robust import weighted_robust_method
from farsign_jax._src.methods.zeno import zeno_method
from farsign_jax._src.simulator import driver, engine, loop, rounds
from farsign_jax._src.simulator.config import SimulationConfig


def _workers(tiny_dataset, logreg, method, attack='none', **config):
  settings = dict(
    num_workers=10,
    byzantine_fraction=0.2,
    straggler_fraction=0.2,
    batch_size=8,
    seed=1,
  )
  settings.update(config)
  return driver.build_workers(
    method, fs.make_attack(attack), SimulationConfig(**settings), logreg,
    tiny_dataset,
  )


def _sync(logreg, aggregator='mean', lr=0.5, **kwargs):
  return synchronous_method(aggregator, logreg.num_params, lr, 10, 2, **kwargs)


def test_round_waits_for_its_slowest_worker_and_steps_on_the_mean(
  tiny_dataset, logreg
):
  workers = _workers(tiny_dataset, logreg, _sync(logreg))
  state = rounds.init_rounds(workers)
  new, record = jax.jit(rounds.round_step)(workers, state)
  ids = jnp.arange(10)
  durations = np.asarray(jax.vmap(workers.job_time)(ids, jnp.zeros(10, int)))
  assert float(new.clock) == pytest.approx(durations.max(), rel=1e-6)
  assert int(new.version) == 10 and int(new.ticks) == 1
  np.testing.assert_array_equal(new.jobs, np.ones(10))
  # Message ids follow the arrival order; the step is on the plain mean.
  rank = np.argsort(np.argsort(durations, kind='stable'))
  np.testing.assert_array_equal(record.message_ids, rank)
  grads = jax.vmap(workers.honest_message, (None, 0, 0))(
    workers.init_params, ids, jnp.asarray(rank, jnp.int32)
  )
  expected = workers.init_params - 0.5 * grads.mean(0)
  # Same gradients, summed in another order: 1e-6 absolute.
  np.testing.assert_allclose(new.server.params, expected, atol=1e-6)
  # The next round uses each worker's second job.
  second, _ = jax.jit(rounds.round_step)(workers, new)
  later = np.asarray(jax.vmap(workers.job_time)(ids, jnp.ones(10, int)))
  assert float(second.clock) == pytest.approx(
    durations.max() + later.max(), rel=1e-6
  )


def test_quorum_ends_the_round_at_the_qth_arrival(tiny_dataset, logreg):
  method = _sync(logreg, 'median', quorum=6)
  workers = _workers(tiny_dataset, logreg, method)
  new, record = jax.jit(rounds.round_step)(workers, rounds.init_rounds(workers))
  durations = np.asarray(
    jax.vmap(workers.job_time)(jnp.arange(10), jnp.zeros(10, int))
  )
  assert float(new.clock) == pytest.approx(np.sort(durations)[5], rel=1e-6)
  assert int(np.asarray(record.arrived).sum()) == 6 == int(new.version)


def test_silent_adversaries_are_left_out_of_rounds(tiny_dataset, logreg):
  workers = _workers(tiny_dataset, logreg, _sync(logreg), attack='silence')
  result = rounds.simulate_rounds(workers, 40, lambda p: 0.5, eval_every=16)
  byzantine = np.asarray(workers.byzantine)
  assert int(result.state.byzantine_messages) == 0
  # 8 live workers a round: every count is whole rounds, 40 after 5.
  counts = [p['messages'] for p in result.curve]
  assert counts[-1] == 40 and all(c % 8 == 0 for c in counts)
  np.testing.assert_array_equal(result.state.jobs, np.where(byzantine, 0, 5))
  summary = result.summary()
  assert summary['mean_staleness'] == 0.0
  assert summary['mean_tick_fill'] == 8.0


def test_rounds_refuse_asynchronous_methods(tiny_dataset, logreg):
  workers = _workers(tiny_dataset, logreg, fs.async_sgd_method(7850, 0.1))
  with pytest.raises(ValueError, match='asynchronous'):
    rounds.simulate_rounds(workers, 10, lambda p: 0.0)
  with pytest.raises(ValueError, match='num_messages'):
    rounds.simulate_rounds(workers, 0, lambda p: 0.0)


def test_robust_rounds_survive_sign_flip_and_mean_does_not(
  tiny_dataset, logreg
):
  accuracy = jax.jit(
    lambda p: logreg.accuracy(
      p,
      fs._src.data.normalize_images(jnp.asarray(tiny_dataset.test_images)),
      jnp.asarray(tiny_dataset.test_labels),
    )
  )
  final = {}
  for name in ('mean', 'median', 'geometric_median'):
    workers = _workers(
      tiny_dataset, logreg, _sync(logreg, name), attack='sign_flip'
    )
    result = rounds.simulate_rounds(workers, 150, accuracy, eval_every=150)
    final[name] = result.final_accuracy
  # The synthetic digits are separable: robust rules reach 0.9 in 15
  # rounds, the mean is pushed uphill by 2 flips of 10x each round.
  assert final['median'] > 0.9 and final['geometric_median'] > 0.9
  assert final['mean'] < 0.5


def test_basgd_routes_by_worker_and_steps_when_all_buffers_fill():
  method = basgd_method(2, 1.0, num_byzantine=1, num_buffers=3)
  state = method.init(jnp.zeros(2))
  step = jax.jit(method.apply)
  for worker, g in ((0, [1.0, 0]), (3, [3.0, 0]), (1, [0, 5.0])):
    state = step(state, jnp.array(g), 0, 0, worker)
    np.testing.assert_array_equal(state.params, [0.0, 0.0])
  np.testing.assert_array_equal(state.counts, [2, 1, 0])
  state = step(state, jnp.array([0.0, 1.0]), 0, 0, 5)
  # Buffer means [2, 0], [0, 5], [0, 1]: median [0, 1].
  np.testing.assert_allclose(state.params, [0.0, -1.0])
  np.testing.assert_array_equal(state.counts, [0, 0, 0])
  assert int(state.count) == 1
  with pytest.raises(ValueError, match='num_byzantine=1'):
    basgd_method(2, 1.0, num_byzantine=1, num_buffers=2)


def test_kardam_primes_then_filters_large_lipschitz_coefficients():
  method = kardam_method(2, 1.0, num_workers=4, num_byzantine=1, damping=0.0)
  state = method.init(jnp.zeros(2))
  step = jax.jit(method.apply)
  state = step(state, jnp.array([1.0, 0.0]), 0, 0, 0)
  np.testing.assert_array_equal(state.params, [0.0, 0.0])  # first: primes
  state = step(state, jnp.array([1.0, 0.0]), 1, 0, 1)
  state = step(state, jnp.array([1.5, 0.0]), 2, 1, 0)  # accepted
  np.testing.assert_allclose(state.params, [-1.5, 0.0])
  # Fill the window with small coefficients, then send a wild gradient.
  for i in range(4):
    state = step(state, state.params + 0.1, 3 + i, 0, i % 2)
  before = state.params
  state = step(state, jnp.array([1e4, -1e4]), 9, 0, 1)
  np.testing.assert_array_equal(state.params, before)
  state = step(state, jnp.array([jnp.nan, 0.0]), 10, 0, 0)
  np.testing.assert_array_equal(state.params, before)
  with pytest.raises(ValueError, match='num_byzantine=2'):
    kardam_method(2, 1.0, num_workers=4, num_byzantine=2)


def test_kardam_damps_stale_gradients():
  method = kardam_method(1, 1.0, num_workers=4, num_byzantine=1, damping=0.5)
  state = method.init(jnp.zeros(1))
  state = method.apply(state, jnp.array([1.0]), 0, 0, 0)
  state = method.apply(state, jnp.array([1.0]), 1, 2, 0)
  np.testing.assert_allclose(state.params, [-np.exp(-1.0)], rtol=1e-6)


def test_weighted_robust_weights_workers_by_arrival_frequency():
  method = weighted_robust_method(1, 1.0, num_workers=3, num_byzantine=1)
  state = method.init(jnp.zeros(1))
  step = jax.jit(method.apply)
  # Worker 0 sends 0 three times, worker 1 sends 10 once, worker 2 twice 5.
  for worker, g in ((0, 0.0), (0, 0.0), (1, 10.0), (0, 0.0), (2, 5.0)):
    state = step(state, jnp.array([g]), 0, 0, worker)
  np.testing.assert_array_equal(state.arrivals, [3, 1, 1])
  before = state.params
  state = step(state, jnp.array([5.0]), 0, 0, 2)
  # Weights 3/6, 1/6, 2/6 on 0, 10, 5: the weighted median is 0.
  np.testing.assert_allclose(state.params, before)
  with pytest.raises(ValueError, match='num_byzantine=2'):
    weighted_robust_method(1, 1.0, num_workers=4, num_byzantine=2)


def test_zeno_accepts_descent_directions_only():
  trusted_loss = lambda params, key: 0.5 * jnp.sum((params - 1.0) ** 2)
  method = zeno_method(2, 0.1, trusted_loss)
  assert method.needs_trusted_data
  state = method.init(jnp.zeros(2))
  state = method.apply(state, jnp.array([10.0, 10.0]), 0, 0)  # uphill
  np.testing.assert_array_equal(state.params, [0.0, 0.0])
  state = method.apply(state, jnp.array([-3.0, -3.0]), 1, 0)  # downhill
  # Rescaled to the trusted gradient's norm, sqrt(2): a step of 0.1 * 1.
  np.testing.assert_allclose(state.params, [0.1, 0.1], rtol=1e-6)
  state = method.apply(state, jnp.array([jnp.inf, 0.0]), 2, 0)
  np.testing.assert_allclose(state.params, [0.1, 0.1], rtol=1e-6)
  assert int(state.accepted) == 1


@pytest.mark.parametrize('name', ['basgd', 'kardam', 'weighted_robust'])
def test_engine_passes_the_sender_like_the_loop(tiny_dataset, logreg, name):
  settings = registry.MethodSettings(num_workers=10, num_byzantine=2)
  method = registry.make_method(name, logreg.num_params, settings)
  workers = _workers(tiny_dataset, logreg, method, attack='sign_flip')
  state = engine.make_runner(workers)(engine.init_state(workers), 40)
  server, _ = loop.run_loop(workers, 40)
  # Batched and single gradients differ in the last bits; 1e-5 absolute.
  np.testing.assert_allclose(
    method.params(state.server), method.params(server), atol=1e-5
  )


def test_every_registered_method_builds(logreg):
  settings = registry.with_trusted_data(
    registry.MethodSettings(),
    logreg.loss,
    np.zeros((4, 28, 28), np.uint8),
    np.zeros(4, np.int32),
  )
  for name, spec in registry.METHODS.items():
    method = registry.make_method(name, logreg.num_params, settings)
    assert method.synchronous == spec.synchronous, name
    assert method.needs_trusted_data == spec.needs_trusted_data, name
  with pytest.raises(ValueError, match='trusted'):
    registry.make_method('zeno', 10, registry.MethodSettings())
