"""The public modules export exactly what their __all__ lists."""

import importlib

import pytest

MODULES = [
  'farsign_jax',
  'farsign_jax.aggregators',
  'farsign_jax.data',
  'farsign_jax.methods',
  'farsign_jax.models',
  'farsign_jax.simulator',
]


@pytest.mark.parametrize('name', MODULES)
def test_every_listed_name_exists_and_is_public(name):
  module = importlib.import_module(name)
  assert module.__all__, name
  for attribute in module.__all__:
    assert not attribute.startswith('_')
    assert getattr(module, attribute) is not None


def test_every_registered_method_is_buildable_by_name():
  import jax.numpy as jnp

  import farsign_jax as fs

  settings = fs.MethodSettings(num_workers=10, num_byzantine=2)
  for name in fs.METHODS:
    if fs.METHODS[name].needs_trusted_data:
      continue  # needs a trusted loss, tested with the baselines
    method = fs.make_method(name, 20, settings)
    # Coordinate FAR-SIGN and every baseline send whole gradients here.
    assert method.message_size == 20
    state = method.init(jnp.zeros(20))
    assert method.params(state).shape == (20,)
