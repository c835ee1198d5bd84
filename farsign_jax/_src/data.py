"""MNIST loading.

MNIST is read from the four original IDX files (plain or gzip-compressed) in a
directory the user names, or fetched through TensorFlow Datasets when it is
installed. Images stay ``uint8`` on the host to save memory; use
:func:`normalize_images` to turn a batch into ``float32`` features in
``[0, 1]``.

How the training set is split across workers is in
:mod:`farsign_jax._src.shards` (re-exported here).
"""

from __future__ import annotations

import gzip
import math
import os
import zlib
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from farsign_jax._src.shards import PARTITION_SCHEMES as PARTITION_SCHEMES
from farsign_jax._src.shards import WorkerShards as WorkerShards
from farsign_jax._src.shards import partition as partition
from farsign_jax._src.shards import sample_minibatch as sample_minibatch

DATA_DIR_ENV = 'FARSIGN_DATA_DIR'
"""Environment variable naming a directory that holds the MNIST IDX files."""

MNIST_FILES = (
  'train-images-idx3-ubyte',
  'train-labels-idx1-ubyte',
  't10k-images-idx3-ubyte',
  't10k-labels-idx1-ubyte',
)
"""Base names of the four MNIST IDX files (each may also end in ``.gz``)."""

IMAGE_SHAPE = (28, 28)
NUM_PIXELS = 784
NUM_CLASSES = 10

# IDX type code -> big-endian NumPy dtype.
_IDX_DTYPES = {
  0x08: np.dtype('>u1'),
  0x09: np.dtype('>i1'),
  0x0B: np.dtype('>i2'),
  0x0C: np.dtype('>i4'),
  0x0D: np.dtype('>f4'),
  0x0E: np.dtype('>f8'),
}

_HOW_TO_PROVIDE = (
  'To fix this, point `--data-dir` or the {env} environment variable at a '
  'folder holding the four MNIST IDX files ({files}, each plain or with a '
  '.gz suffix), or install the `tfds` extra (pip install '
  "'farsign_jax[tfds]') so that MNIST can be downloaded through "
  'tensorflow-datasets.'
).format(env=DATA_DIR_ENV, files=', '.join(MNIST_FILES))


class Dataset(NamedTuple):
  """MNIST held in host memory as NumPy arrays.

  Attributes:
    train_images: ``uint8`` array of shape ``[n_train, 28, 28]``.
    train_labels: ``int32`` array of shape ``[n_train]`` with values 0..9.
    test_images: ``uint8`` array of shape ``[n_test, 28, 28]``.
    test_labels: ``int32`` array of shape ``[n_test]`` with values 0..9.
  """

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray


# --------------------------------------------------------------------------
# IDX files
# --------------------------------------------------------------------------


def read_idx(
  path: str | os.PathLike[str], expected_ndim: int | None = None
) -> np.ndarray:
  """Reads one IDX file, plain or gzip-compressed.

  A file whose name ends in ``.gz`` is decompressed with gzip; any other file
  is read as raw IDX. The header is a big-endian magic number
  ``0x00 0x00 <type code> <ndim>`` followed by one big-endian ``uint32`` per
  dimension, then the data in row-major order.

  Args:
    path: Path of the file.
    expected_ndim: If given, the number of dimensions the file must have.

  Returns:
    A NumPy array in native byte order with the shape stored in the file
    (``uint8`` for type code ``0x08``, as in MNIST).

  Raises:
    FileNotFoundError: If ``path`` does not exist.
    ValueError: If the magic number or type code is invalid, the number of
      dimensions differs from ``expected_ndim``, or the data is shorter or
      longer than the dimensions say. The message names the file.

  Example:
    A gzip-compressed IDX file of three ``uint8`` labels, written and read
    back (``read_idx(os.path.join(data_dir, 't10k-labels-idx1-ubyte.gz'))``
    reads MNIST's test labels the same way):

    >>> import gzip, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), 'labels-idx1-ubyte.gz')
    >>> header = bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, 'big')
    >>> with gzip.open(path, 'wb') as f:
    ...   _ = f.write(header + bytes([7, 2, 1]))
    >>> read_idx(path, expected_ndim=1)
    array([7, 2, 1], dtype=uint8)
  """
  path = os.fspath(path)
  if expected_ndim is not None and (
    not isinstance(expected_ndim, int)
    or isinstance(expected_ndim, bool)
    or expected_ndim < 1
  ):
    raise ValueError(
      f'`expected_ndim` must be None or a positive int, got {expected_ndim!r}.'
    )
  if not os.path.isfile(path):
    raise FileNotFoundError(
      f'IDX file not found (or not a regular file): {path!r}.'
    )
  try:
    if path.endswith('.gz'):
      with gzip.open(path, 'rb') as f:
        raw = f.read()
    else:
      with open(path, 'rb') as f:
        raw = f.read()
  except (OSError, EOFError, zlib.error) as err:
    raise ValueError(f'Could not read IDX file {path!r}: {err}') from err

  if len(raw) < 4:
    raise ValueError(
      f'IDX file {path!r} is too short ({len(raw)} bytes) to hold the 4-byte '
      'magic number.'
    )
  magic = int.from_bytes(raw[:4], 'big')
  type_code, ndim = raw[2], raw[3]
  if raw[0] != 0 or raw[1] != 0 or ndim == 0:
    raise ValueError(
      f'IDX file {path!r} has an invalid magic number {magic} (0x{magic:08X});'
      ' expected 0x0000TTNN with a type code TT and ndim NN >= 1, e.g. 2051 '
      'for uint8 images or 2049 for uint8 labels.'
    )
  if type_code not in _IDX_DTYPES:
    known = ', '.join(f'0x{c:02X}' for c in _IDX_DTYPES)
    raise ValueError(
      f'IDX file {path!r} has unsupported type code 0x{type_code:02X} '
      f'(magic number {magic}); supported type codes: {known}.'
    )
  if expected_ndim is not None and ndim != expected_ndim:
    raise ValueError(
      f'IDX file {path!r} has {ndim} dimensions, expected {expected_ndim}.'
    )
  header_len = 4 + 4 * ndim
  if len(raw) < header_len:
    raise ValueError(
      f'IDX file {path!r} is truncated: its header needs {header_len} bytes '
      f'for {ndim} dimensions, but the file has {len(raw)}.'
    )
  shape = tuple(
    int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], 'big') for i in range(ndim)
  )
  dtype = _IDX_DTYPES[type_code]
  expected = math.prod(shape) * dtype.itemsize
  found = len(raw) - header_len
  if found < expected:
    raise ValueError(
      f'IDX file {path!r} is truncated: shape {shape} needs {expected} data '
      f'bytes, found {found}.'
    )
  if found > expected:
    raise ValueError(
      f'IDX file {path!r} has {found - expected} trailing bytes after the '
      f'{expected} data bytes of shape {shape}.'
    )
  data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
  # astype copies into a writable array in native byte order.
  return data.astype(dtype.newbyteorder('='))


def _find_idx_file(data_dir: str, name: str) -> str | None:
  for candidate in (name, name + '.gz'):
    path = os.path.join(data_dir, candidate)
    if os.path.isfile(path):
      return path
  return None


def _check_split(
  images: np.ndarray,
  labels: np.ndarray,
  images_path: str,
  labels_path: str,
) -> tuple[np.ndarray, np.ndarray]:
  """Validates one split and returns it as (uint8 images, int32 labels)."""
  if images.dtype != np.uint8 or images.shape[1:] != IMAGE_SHAPE:
    raise ValueError(
      f'IDX file {images_path!r} holds {images.dtype} images of shape '
      f'{images.shape[1:]}; MNIST images must be uint8 of shape {IMAGE_SHAPE}.'
    )
  if labels.dtype != np.uint8:
    raise ValueError(
      f'IDX file {labels_path!r} holds {labels.dtype} labels; MNIST labels '
      'must be uint8.'
    )
  if labels.shape[0] != images.shape[0]:
    raise ValueError(
      f'IDX file {labels_path!r} has {labels.shape[0]} labels but '
      f'{images_path!r} has {images.shape[0]} images; the counts must match.'
    )
  if labels.size and labels.max() >= NUM_CLASSES:
    bad = sorted({int(v) for v in labels[labels >= NUM_CLASSES]})
    raise ValueError(
      f'IDX file {labels_path!r} has labels {bad[:5]} outside 0..'
      f'{NUM_CLASSES - 1}.'
    )
  return images, labels.astype(np.int32)


def load_mnist_idx(data_dir: str | os.PathLike[str]) -> Dataset:
  """Loads MNIST from a directory holding the four IDX files.

  The directory must hold ``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and
  ``t10k-labels-idx1-ubyte``, each either plain or with a ``.gz`` suffix
  (a plain file is preferred when both exist).

  Args:
    data_dir: Directory holding the files.

  Returns:
    The :class:`Dataset`.

  Raises:
    FileNotFoundError: If any of the four files is missing; the message lists
      the missing files and says how to provide them.
    ValueError: If a file is malformed, images are not 28x28, the label and
      image counts differ, or a label is outside 0..9.

  Example:
    With the ``FARSIGN_DATA_DIR`` environment variable naming the folder of
    MNIST IDX files:

    >>> import os
    >>> ds = load_mnist_idx(os.environ['FARSIGN_DATA_DIR'])
    >>> ds.train_images.shape, ds.test_labels.shape
    ((60000, 28, 28), (10000,))
  """
  data_dir = os.path.expanduser(os.fspath(data_dir))
  paths = {name: _find_idx_file(data_dir, name) for name in MNIST_FILES}
  missing = [name for name, path in paths.items() if path is None]
  if missing:
    where = (
      f'directory {data_dir!r}'
      if os.path.isdir(data_dir)
      else f'{data_dir!r} (which is not an existing directory)'
    )
    raise FileNotFoundError(
      f'MNIST IDX files missing from {where}: '
      + ', '.join(f'{name}[.gz]' for name in missing)
      + '. '
      + _HOW_TO_PROVIDE
    )
  train_img, train_lbl, test_img, test_lbl = (
    paths[name] for name in MNIST_FILES
  )
  train_images, train_labels = _check_split(
    read_idx(train_img, expected_ndim=3),
    read_idx(train_lbl, expected_ndim=1),
    train_img,
    train_lbl,
  )
  test_images, test_labels = _check_split(
    read_idx(test_img, expected_ndim=3),
    read_idx(test_lbl, expected_ndim=1),
    test_img,
    test_lbl,
  )
  return Dataset(train_images, train_labels, test_images, test_labels)


def load_mnist_tfds() -> Dataset:
  """Loads MNIST through TensorFlow Datasets (downloads it if needed).

  Returns:
    The :class:`Dataset`, with the same dtypes and shapes as
    :func:`load_mnist_idx`.

  Raises:
    ImportError: If ``tensorflow_datasets`` is not installed.

  Example:
    Not run by the doctests: it needs the ``tfds`` extra and network access
    (or a tensorflow-datasets cache).

    >>> ds = load_mnist_tfds()  # doctest: +SKIP
    >>> ds.train_images.dtype  # doctest: +SKIP
    dtype('uint8')
  """
  try:
    import tensorflow_datasets as tfds
  except ImportError as err:
    raise ImportError(
      'Loading MNIST without a data directory needs tensorflow-datasets, '
      'which is not installed. ' + _HOW_TO_PROVIDE
    ) from err
  train, test = tfds.as_numpy(
    tfds.load('mnist', split=['train', 'test'], batch_size=-1)
  )

  def convert(split: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(split['image'], dtype=np.uint8).reshape(
      -1, *IMAGE_SHAPE
    )
    return images, np.asarray(split['label'], dtype=np.int32)

  return Dataset(*convert(train), *convert(test))


def load_mnist(data_dir: str | os.PathLike[str] | None = None) -> Dataset:
  """Loads MNIST from the first source that is configured.

  Sources, in order: ``data_dir`` if given; else the directory named by the
  ``FARSIGN_DATA_DIR`` environment variable if set and non-empty; else
  TensorFlow Datasets.

  Args:
    data_dir: Optional directory holding the four MNIST IDX files.

  Returns:
    The :class:`Dataset`.

  Raises:
    FileNotFoundError: If the chosen directory lacks a file, or no directory
      is configured and TensorFlow Datasets is missing or fails. The message
      says how to provide the files.
    ValueError: If a file is malformed.

  Example:
    With ``data_dir`` unset, the folder named by ``FARSIGN_DATA_DIR`` is
    read (``load_mnist('path/to/mnist')`` names one explicitly):

    >>> ds = load_mnist()
    >>> int(ds.train_labels.max())
    9
  """
  if data_dir is not None:
    return load_mnist_idx(data_dir)
  env_dir = os.environ.get(DATA_DIR_ENV, '')
  if env_dir:
    return load_mnist_idx(env_dir)
  try:
    return load_mnist_tfds()
  except Exception as err:  # Any tfds failure: re-raised with instructions.
    # load_mnist_tfds's own ImportError already ends with the instructions;
    # drop them from the cause so that they appear once.
    cause = str(err).replace(_HOW_TO_PROVIDE, '').strip().rstrip('.')
    raise FileNotFoundError(
      f'No MNIST data directory was given (`data_dir` is None and '
      f'{DATA_DIR_ENV} is not set), and loading through tensorflow-datasets '
      f'failed ({type(err).__name__}: {cause}). ' + _HOW_TO_PROVIDE
    ) from err


# --------------------------------------------------------------------------
# Array helpers
# --------------------------------------------------------------------------


def normalize_images(images: Any) -> Any:
  """Scales ``uint8`` images to ``float32`` in ``[0, 1]``, flattened.

  Works on NumPy arrays (returning NumPy) and on JAX arrays, including inside
  ``jit`` (returning JAX).

  Args:
    images: ``uint8`` array of shape ``[..., 28, 28]`` or ``[..., 784]``.

  Returns:
    ``float32`` array of shape ``[..., 784]`` equal to ``images / 255``.

  Raises:
    TypeError: If ``images`` is not ``uint8``.
    ValueError: If its trailing shape is neither ``(28, 28)`` nor ``(784,)``.

  Example:
    >>> import numpy as np
    >>> x = normalize_images(np.full((2, 28, 28), 255, np.uint8))
    >>> x.shape, float(x.max())
    ((2, 784), 1.0)
  """
  xp = np if isinstance(images, np.ndarray) else jnp
  images = xp.asarray(images)
  if images.dtype != np.uint8:
    raise TypeError(
      f'`images` must have dtype uint8 (raw pixel values), got {images.dtype}.'
    )
  shape = tuple(images.shape)
  if shape[-2:] == IMAGE_SHAPE:
    flat_shape = shape[:-2] + (NUM_PIXELS,)
  elif shape[-1:] == (NUM_PIXELS,):
    flat_shape = shape
  else:
    raise ValueError(
      f'`images` must have shape [..., 28, 28] or [..., 784], got {shape}.'
    )
  flat = images.reshape(flat_shape).astype(xp.float32)
  return flat / xp.float32(255.0)


def _check_count(name: str, value: Any, available: int) -> int:
  if value is None:
    return available
  if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
    raise TypeError(f'`{name}` must be an int or None, got {value!r}.')
  if not 1 <= value <= available:
    raise ValueError(
      f'`{name}` must be between 1 and {available} (the number of examples '
      f'available), got {value}.'
    )
  return int(value)


def subset(
  dataset: Dataset, num_train: int | None = None, num_test: int | None = None
) -> Dataset:
  """Keeps the first examples of each split, e.g. for fast tests.

  The kept examples are copied, so the full arrays can be freed.

  Args:
    dataset: The dataset to cut down.
    num_train: Number of training examples to keep; None keeps all.
    num_test: Number of test examples to keep; None keeps all.

  Returns:
    A new :class:`Dataset` with the first ``num_train`` training and
    ``num_test`` test examples.

  Raises:
    TypeError: If a count is not an int or None.
    ValueError: If a count is below 1 or above the split's size.

  Example:
    A synthetic data set of 100 training and 20 test images (with MNIST,
    ``ds = load_mnist(...)`` takes its place):

    >>> import numpy as np
    >>> labels = np.arange(100, dtype=np.int32) % 10
    >>> images = np.zeros((100, 28, 28), np.uint8)
    >>> ds = Dataset(images, labels, images[:20], labels[:20])
    >>> small = subset(ds, num_train=50, num_test=10)
    >>> small.train_images.shape, small.test_labels.shape
    ((50, 28, 28), (10,))
  """
  n_train = _check_count('num_train', num_train, len(dataset.train_labels))
  n_test = _check_count('num_test', num_test, len(dataset.test_labels))
  return Dataset(
    train_images=np.array(dataset.train_images[:n_train]),
    train_labels=np.array(dataset.train_labels[:n_train]),
    test_images=np.array(dataset.test_images[:n_test]),
    test_labels=np.array(dataset.test_labels[:n_test]),
  )



__all__ = [
  'DATA_DIR_ENV',
  'MNIST_FILES',
  'PARTITION_SCHEMES',
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
]
