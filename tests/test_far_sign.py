"""Tests of the FAR-SIGN transformation."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import farsign_jax as fs


def _scan_tracker(tx, samples):
  """Feeds scalar samples one by one; returns the final tracker value."""
  state = tx.init(jnp.zeros(1))

  def step(state, y):
    _, state = tx.update(y[None], state)
    return state, None

  state, _ = jax.lax.scan(step, state, samples)
  return float(state.tracker[0])


def test_tracker_follows_the_median_not_the_mean():
  # Log-normal(0, 1): median 1, mean exp(1/2) = 1.65. The tracker is a
  # stochastic subgradient method on E|y - g|, so with a decaying step it
  # settles on the median. 40 000 draws and a step decaying from 0.5 leave
  # an error of a few hundredths; the tolerance 0.05 is 13x smaller than the
  # gap between the median and the mean.
  samples = jnp.exp(jax.random.normal(jax.random.key(0), (40_000,)))
  tx = fs.scale_by_far_sign(fs.inverse_power_decay(0.5, 100.0, 0.7))
  tracker = _scan_tracker(tx, samples)
  median = float(jnp.median(samples))
  mean = float(jnp.mean(samples))
  assert abs(tracker - median) < 0.05
  assert abs(tracker - mean) > 0.5


@pytest.mark.parametrize('value', [1e30, np.inf, -np.inf, np.nan])
@pytest.mark.parametrize(
  'design, k',
  [
    ('coordinate', None),
    ('gaussian', 3),
    ('orthogonal', 3),
    ('coordinate_subset', 3),
    ('rademacher', 3),
  ],
)
def test_one_message_has_bounded_influence(value, design, k):
  beta = 0.25
  tx = fs.scale_by_far_sign(beta, design, k, seed=1)
  params = {'a': jnp.zeros((2, 3)), 'b': jnp.zeros(4)}
  state = tx.init(params)
  # Put the tracker somewhere non-trivial first.
  honest = {'a': jnp.ones((2, 3)), 'b': -jnp.ones(4)}
  for _ in range(3):
    _, state = tx.update(honest, state)
  before = jax.flatten_util.ravel_pytree(state.tracker)[0]

  bad = jax.tree.map(lambda x: jnp.full_like(x, value), params)
  _, state = tx.update(bad, state)
  after = jax.flatten_util.ravel_pytree(state.tracker)[0]

  chex.assert_tree_all_finite(state)
  moved = after - before
  if np.isnan(value):
    np.testing.assert_array_equal(moved, 0.0)
  elif design == 'coordinate':
    # Each unit coordinate direction moves by exactly beta or not at all.
    assert float(jnp.max(jnp.abs(moved))) <= beta * (1 + 1e-6)
  else:
    # k unit directions: ||sum_j ±u_j|| <= k.
    assert float(jnp.linalg.norm(moved)) <= beta * k * (1 + 1e-6)


def test_directional_message_equals_gradient_route():
  # Sending the projections of a gradient as a message must move the tracker
  # exactly as sending the gradient itself (same directions, same id).
  design = fs.make_directions('gaussian', dim=10, num_directions=4)
  grad = jax.random.normal(jax.random.key(3), (10,))
  tx = fs.scale_by_far_sign(0.1, 'gaussian', 4, seed=7)
  s0 = tx.init(jnp.zeros(10))
  g_route, _ = tx.update(grad, s0)
  key = design.message_key(jax.random.key(7), 0)
  message = fs.DirectionalMessage(design.project(key, grad), jnp.int32(0))
  m_route, _ = tx.update(message, s0)
  np.testing.assert_allclose(g_route, m_route, atol=1e-6)


@pytest.mark.parametrize('jit', [False, True])
def test_far_sign_descends_on_a_quadratic(jit):
  target = jnp.array([1.0, -2.0, 3.0])
  loss = lambda p: jnp.sum((p - target) ** 2)
  tx = fs.far_sign(0.05, fs.inverse_power_decay(0.3, 50.0, 0.6))
  params, state = jnp.zeros(3), tx.init(jnp.zeros(3))

  def step(params, state):
    updates, state = tx.update(jax.grad(loss)(params), state, params)
    return optax.apply_updates(params, updates), state

  step = jax.jit(step) if jit else step
  for _ in range(400):
    params, state = step(params, state)
  # The tracker jitters by about beta around the gradient, so the iterate
  # oscillates within roughly alpha * beta / curvature of the optimum.
  np.testing.assert_allclose(params, target, atol=0.05)


def test_no_recompilation_and_stable_dtypes():
  tx = fs.far_sign(optax.linear_schedule(0.1, 0.01, 100), 0.05)
  params = {'w': jnp.zeros((3, 2), jnp.float32), 'b': jnp.zeros(2)}
  state = tx.init(params)
  traces = []

  @jax.jit
  def step(params, state, grads):
    traces.append(1)
    updates, state = tx.update(grads, state, params)
    return optax.apply_updates(params, updates), state

  grads = jax.tree.map(jnp.ones_like, params)
  params1, state1 = step(params, state, grads)
  params2, state2 = step(params1, state1, grads)
  assert len(traces) == 1
  chex.assert_trees_all_equal_dtypes(params, params2)
  chex.assert_trees_all_equal_dtypes(state, state2)
  chex.assert_trees_all_equal_shapes(state, state2)


def test_composes_with_optax_chain():
  tx = optax.chain(
    optax.clip_by_global_norm(1.0),
    fs.scale_by_far_sign(0.1),
    optax.scale(-0.5),
  )
  params = jnp.zeros(3)
  state = tx.init(params)
  updates, state = tx.update(jnp.array([5.0, -5.0, 0.0]), state, params)
  # Clipping keeps the signs; the tracker takes one signed step of 0.1.
  np.testing.assert_allclose(updates, [-0.05, 0.05, 0.0], atol=1e-7)


@pytest.mark.parametrize(
  'kwargs, match',
  [
    ({'tracking_rate': 0.0}, 'tracking_rate'),
    ({'tracking_rate': -1.0}, 'tracking_rate'),
    ({'tracking_rate': 0.1, 'directions': 'spiral'}, 'spiral'),
  ],
)
def test_bad_arguments_are_named(kwargs, match):
  with pytest.raises(ValueError, match=match):
    fs.scale_by_far_sign(**kwargs)


def test_too_many_directions_is_refused_at_init():
  tx = fs.scale_by_far_sign(0.1, 'gaussian', num_directions=5)
  with pytest.raises(ValueError, match='num_directions'):
    tx.init(jnp.zeros(3))
