"""Tests for farsign_jax._src.models."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from farsign_jax._src import models


def batch(n=16, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, 784)).astype(np.float32) / 255.0
  labels = rng.integers(0, 10, n).astype(np.int32)
  return jnp.asarray(images), jnp.asarray(labels)


@pytest.fixture(scope='module')
def logreg():
  return models.flat_model(models.make_model('logreg'), jax.random.key(0))


@pytest.fixture(scope='module')
def mlp():
  return models.flat_model(models.make_model('mlp'), jax.random.key(0))


def test_logreg_shapes(logreg):
  x, _ = batch()
  assert logreg.num_params == 784 * 10 + 10
  assert logreg.init_params.shape == (logreg.num_params,)
  assert logreg.init_params.dtype == jnp.float32
  assert logreg.logits(logreg.init_params, x).shape == (16, 10)
  params = logreg.unravel(logreg.init_params)
  assert params['Dense_0']['kernel'].shape == (784, 10)


def test_logreg_zero_init_loss_is_log10(logreg):
  x, y = batch()
  assert not np.any(np.asarray(logreg.init_params))
  loss = logreg.loss(logreg.init_params, x, y)
  assert loss.dtype == jnp.float32 and loss.shape == ()
  assert abs(float(loss) - math.log(10)) < 1e-5


def test_logreg_gradient_finite_and_descends(logreg):
  x, y = batch()
  grad = jax.jit(jax.grad(logreg.loss))(logreg.init_params, x, y)
  assert grad.shape == logreg.init_params.shape
  assert np.all(np.isfinite(grad)) and np.any(grad != 0)
  stepped = logreg.init_params - 0.1 * grad
  assert logreg.loss(stepped, x, y) < logreg.loss(logreg.init_params, x, y)


def test_accuracy_matches_argmax(logreg):
  x, y = batch(seed=3)
  params = jax.random.normal(jax.random.key(1), logreg.init_params.shape)
  acc = float(logreg.accuracy(params, x, y))
  expected = np.mean(np.argmax(logreg.logits(params, x), -1) == np.asarray(y))
  assert 0.0 <= acc <= 1.0
  assert acc == pytest.approx(expected)


def test_accuracy_can_be_perfect(logreg):
  # Bias-only parameters that always predict class 3.
  tree = jax.tree.map(jnp.zeros_like, logreg.unravel(logreg.init_params))
  tree['Dense_0']['bias'] = tree['Dense_0']['bias'].at[3].set(1.0)
  flat, _ = jax.flatten_util.ravel_pytree(tree)
  x, _ = batch()
  assert float(logreg.accuracy(flat, x, jnp.full(16, 3))) == 1.0
  assert float(logreg.accuracy(flat, x, jnp.full(16, 4))) == 0.0


def test_mlp_shapes_and_unravel_round_trip(mlp):
  assert mlp.num_params == 784 * 128 + 128 + 128 * 10 + 10
  tree = mlp.unravel(mlp.init_params)
  assert tree['Dense_0']['kernel'].shape == (784, 128)
  assert tree['Dense_1']['kernel'].shape == (128, 10)
  flat, _ = jax.flatten_util.ravel_pytree(tree)
  np.testing.assert_array_equal(flat, mlp.init_params)


def test_mlp_init_depends_on_key_and_is_sensible(mlp):
  x, y = batch()
  same = models.flat_model(models.make_model('mlp'), jax.random.key(0))
  other = models.flat_model(models.make_model('mlp'), jax.random.key(1))
  np.testing.assert_array_equal(same.init_params, mlp.init_params)
  assert not np.allclose(other.init_params, mlp.init_params)
  tree = mlp.unravel(mlp.init_params)
  # He init for the ReLU layer: std ~ sqrt(2 / 784).
  std = float(jnp.std(tree['Dense_0']['kernel']))
  assert std == pytest.approx(math.sqrt(2 / 784), rel=0.1)
  assert not np.any(np.asarray(tree['Dense_0']['bias']))
  loss = float(mlp.loss(mlp.init_params, x, y))
  assert np.isfinite(loss) and abs(loss - math.log(10)) < 0.5


def test_mlp_gradient_finite(mlp):
  x, y = batch()
  grad = jax.grad(mlp.loss)(mlp.init_params, x, y)
  assert np.all(np.isfinite(grad))
  assert float(jnp.linalg.norm(grad)) > 0


def test_custom_hidden_layers():
  module = models.make_model('mlp', hidden=[128, 128])
  assert module.hidden == (128, 128)
  fm = models.flat_model(module, jax.random.key(0))
  assert fm.num_params == 784 * 128 + 128 + 128 * 128 + 128 + 128 * 10 + 10
  x, _ = batch()
  assert fm.logits(fm.init_params, x).shape == (16, 10)


def test_custom_input_dim_and_classes():
  module = models.make_model('logreg', num_classes=5)
  fm = models.flat_model(module, jax.random.key(0), input_dim=20)
  assert fm.num_params == 20 * 5 + 5
  out = fm.logits(fm.init_params, jnp.ones((3, 20)))
  assert out.shape == (3, 5)
  loss = fm.loss(fm.init_params, jnp.ones((3, 20)), jnp.array([0, 4, 2]))
  assert abs(float(loss) - math.log(5)) < 1e-5


def test_jit_vmap_over_parameter_vectors(mlp):
  x, y = batch()
  stack = mlp.init_params + 0.01 * jax.random.normal(
    jax.random.key(2), (4, mlp.num_params)
  )
  losses = jax.jit(jax.vmap(mlp.loss, in_axes=(0, None, None)))(stack, x, y)
  accs = jax.jit(jax.vmap(mlp.accuracy, in_axes=(0, None, None)))(stack, x, y)
  assert losses.shape == (4,) and accs.shape == (4,)
  for i in range(4):
    assert float(losses[i]) == pytest.approx(
      float(mlp.loss(stack[i], x, y)), rel=1e-5
    )
  assert np.all((accs >= 0) & (accs <= 1))


def test_logits_accept_unflattened_images(logreg):
  params = jax.random.normal(jax.random.key(4), logreg.init_params.shape)
  x, _ = batch()
  flat_out = logreg.logits(params, x)
  img_out = logreg.logits(params, x.reshape(16, 28, 28))
  np.testing.assert_allclose(flat_out, img_out, rtol=1e-6)


def test_make_model_errors():
  assert models.MODELS == ('logreg', 'mlp')
  with pytest.raises(ValueError, match=r"'logreg', 'mlp'.*'bad'"):
    models.make_model('bad')
  with pytest.raises(TypeError, match='hidden'):
    models.make_model('logreg', hidden=(10,))
  with pytest.raises(ValueError, match='`hidden`'):
    models.make_model('mlp', hidden=(10, 0))
  with pytest.raises(ValueError, match='`num_classes`'):
    models.make_model('mlp', num_classes=0)
  with pytest.raises(ValueError, match='`input_dim`'):
    models.flat_model(models.make_model('logreg'), jax.random.key(0), 0)
