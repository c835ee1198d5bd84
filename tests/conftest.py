"""Shared fixtures: a small synthetic MNIST-shaped data set and the real one."""

import os

import jax
import numpy as np
import pytest

from farsign_jax._src import data as data_lib
from farsign_jax._src import models as models_lib


@pytest.fixture(scope='session')
def tiny_dataset():
  """600 training and 200 test 'images' whose label is set by a pixel block."""
  rng = np.random.default_rng(0)

  def make(n):
    labels = rng.integers(0, 10, n).astype(np.int32)
    images = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
    for digit in range(10):
      rows = labels == digit
      images[rows, digit * 2 : digit * 2 + 3, 5:20] = 250
    return images, labels

  train_images, train_labels = make(600)
  test_images, test_labels = make(200)
  return data_lib.Dataset(train_images, train_labels, test_images, test_labels)


@pytest.fixture(scope='session')
def logreg():
  return models_lib.flat_model(
    models_lib.make_model('logreg'), jax.random.key(0)
  )


# The offline copy beside the repository, used when FARSIGN_DATA_DIR is unset.
_SHARED_MNIST = os.path.join(
  os.path.dirname(__file__), '..', '..', 'shared', 'data', 'mnist'
)


@pytest.fixture(scope='session')
def mnist_dir():
  """A folder with the MNIST IDX files: FARSIGN_DATA_DIR (CI sets it)."""
  path = os.environ.get(data_lib.DATA_DIR_ENV) or _SHARED_MNIST
  if not os.path.isdir(path):
    pytest.skip(
      f'no MNIST folder: set {data_lib.DATA_DIR_ENV} to the IDX files'
    )
  return os.path.abspath(path)


@pytest.fixture(scope='session')
def mnist(mnist_dir):
  """The real MNIST."""
  return data_lib.load_mnist(mnist_dir)
