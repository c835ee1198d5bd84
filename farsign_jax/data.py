"""MNIST (IDX files or tensorflow-datasets) and worker data shards."""

from farsign_jax._src.data import DATA_DIR_ENV as DATA_DIR_ENV
from farsign_jax._src.data import Dataset as Dataset
from farsign_jax._src.data import WorkerShards as WorkerShards
from farsign_jax._src.data import load_mnist as load_mnist
from farsign_jax._src.data import load_mnist_idx as load_mnist_idx
from farsign_jax._src.data import load_mnist_tfds as load_mnist_tfds
from farsign_jax._src.data import normalize_images as normalize_images
from farsign_jax._src.data import partition as partition
from farsign_jax._src.data import read_idx as read_idx
from farsign_jax._src.data import sample_minibatch as sample_minibatch
from farsign_jax._src.data import subset as subset

__all__ = (
  'DATA_DIR_ENV',
  'Dataset',
  'WorkerShards',
  'load_mnist',
  'load_mnist_idx',
  'load_mnist_tfds',
  'normalize_images',
  'partition',
  'read_idx',
  'sample_minibatch',
  'subset',
)
