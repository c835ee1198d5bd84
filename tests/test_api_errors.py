"""Misuse of the Python API fails early with errors that name the problem."""

import re
import sys

import jax
import jax.numpy as jnp
import pytest

import farsign_jax as fs
from farsign_jax._src import data as data_lib


def _params():
  return {'b': jnp.zeros(()), 'w': jnp.zeros(3)}


@pytest.mark.parametrize('jit', [False, True])
def test_gradient_with_wrong_leaf_shape_names_both_shapes(jit):
  tx = fs.scale_by_far_sign(0.1)
  state = tx.init(_params())
  update = jax.jit(tx.update) if jit else tx.update
  with pytest.raises(ValueError) as info:
    update({'b': jnp.zeros(()), 'w': jnp.zeros(4)}, state)
  message = str(info.value)
  assert 'does not match the parameters' in message
  assert "['w']: expected (3,), got (4,)" in message
  assert 'expected 2 leaves holding 4 values' in message
  assert 'got 2 leaves holding 5 values' in message


def test_gradient_with_other_structure_names_the_leaves():
  tx = fs.far_sign(0.05, 0.1)
  params = _params()
  state = tx.init(params)
  with pytest.raises(ValueError) as info:
    tx.update({'w': jnp.zeros(3)}, state, params)
  message = str(info.value)
  assert "['b']: expected (), got no leaf" in message
  assert 'got 1 leaf holding 3 values' in message


def test_gradient_of_the_same_size_but_other_shape_is_refused():
  tx = fs.scale_by_far_sign(0.1)
  state = tx.init(jnp.zeros((2, 3)))
  with pytest.raises(ValueError, match=re.escape('expected (2, 3), got (6,)')):
    tx.update(jnp.zeros(6), state)


@pytest.mark.parametrize(
  'design, k, shape',
  [('coordinate', None, (3,)), ('gaussian', 2, (3,)), ('gaussian', 2, (1, 2))],
)
def test_message_with_wrong_length_names_k_and_shape(design, k, shape):
  tx = fs.scale_by_far_sign(0.1, design, k)
  state = tx.init(jnp.zeros(4))
  expected = 4 if k is None else k
  message = fs.DirectionalMessage(jnp.zeros(shape), jnp.int32(0))
  with pytest.raises(ValueError) as info:
    jax.jit(tx.update)(message, state)
  text = str(info.value)
  assert '`DirectionalMessage.values`' in text
  assert f'must have shape ({expected},)' in text
  assert f'k={expected}' in text
  assert f'got shape {shape}' in text


def test_message_of_the_right_length_is_accepted():
  tx = fs.scale_by_far_sign(0.1, 'gaussian', 2)
  state = tx.init(jnp.zeros(4))
  tracker, _ = jax.jit(tx.update)(
    fs.DirectionalMessage(jnp.ones(2), jnp.int32(3)), state
  )
  assert tracker.shape == (4,)


@pytest.mark.parametrize(
  'params, where',
  [
    (jnp.arange(3), '(root)'),
    ({'w': jnp.zeros(3), 'steps': jnp.zeros((), jnp.int32)}, "['steps']"),
  ],
)
def test_integer_params_are_refused_at_init(params, where):
  tx = fs.far_sign(0.05, 0.1)
  with pytest.raises(TypeError, match='floating-point parameters') as info:
    tx.init(params)
  assert where in str(info.value)
  assert 'int32' in str(info.value)


def test_zero_transition_steps_is_named():
  with pytest.raises(ValueError, match='`transition_steps`.*0'):
    fs.inverse_power_decay(0.1, 0, 0.5)


@pytest.fixture
def no_data(monkeypatch):
  """Neither a data directory nor tensorflow-datasets is available."""
  monkeypatch.delenv(data_lib.DATA_DIR_ENV, raising=False)
  # A None entry in sys.modules makes `import tensorflow_datasets` fail.
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)


def test_no_data_error_says_how_to_fix_it_once(no_data):
  with pytest.raises(FileNotFoundError) as info:
    data_lib.load_mnist()
  message = str(info.value)
  assert message.count('To fix this') == 1
  assert data_lib.DATA_DIR_ENV in message
  assert 'tensorflow-datasets, which is not installed' in message
  assert "pip install 'farsign_jax[tfds]'" in message


def test_tfds_failure_says_how_to_fix_it_once(monkeypatch):
  monkeypatch.delenv(data_lib.DATA_DIR_ENV, raising=False)

  def offline():
    raise OSError('network unreachable')

  monkeypatch.setattr(data_lib, 'load_mnist_tfds', offline)
  with pytest.raises(FileNotFoundError) as info:
    data_lib.load_mnist()
  message = str(info.value)
  assert 'OSError: network unreachable' in message
  assert message.count('To fix this') == 1


def test_missing_tfds_and_missing_files_say_how_to_fix_it_once(
  no_data, tmp_path
):
  with pytest.raises(ImportError) as info:
    data_lib.load_mnist_tfds()
  assert str(info.value).count('To fix this') == 1
  with pytest.raises(FileNotFoundError) as info:
    data_lib.load_mnist_idx(tmp_path)
  assert str(info.value).count('To fix this') == 1
