"""Tests for farsign_jax._src.data."""

from __future__ import annotations

import gzip
import os
import re
import struct
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farsign_jax._src import data

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def write_idx(path, array, *, magic=None, extra=b'', cut=0):
  """Writes `array` (uint8) as IDX; optional bad magic, trailing/cut bytes."""
  array = np.asarray(array, dtype=np.uint8)
  if magic is None:
    magic = 0x0800 | array.ndim
  blob = struct.pack('>I', magic)
  blob += b''.join(struct.pack('>I', d) for d in array.shape)
  blob += array.tobytes() + extra
  if cut:
    blob = blob[:-cut]
  opener = gzip.open if str(path).endswith('.gz') else open
  with opener(path, 'wb') as f:
    f.write(blob)
  return path


def write_fake_mnist(directory, n_train=6, n_test=4, gz=(True, False)):
  rng = np.random.default_rng(0)
  arrays = {
    'train-images-idx3-ubyte': rng.integers(0, 256, (n_train, 28, 28)),
    'train-labels-idx1-ubyte': np.arange(n_train) % 10,
    't10k-images-idx3-ubyte': rng.integers(0, 256, (n_test, 28, 28)),
    't10k-labels-idx1-ubyte': (np.arange(n_test) * 3) % 10,
  }
  for i, (name, arr) in enumerate(arrays.items()):
    suffix = '.gz' if gz[i % len(gz)] else ''
    write_idx(directory / (name + suffix), arr)
  return {k: v.astype(np.uint8) for k, v in arrays.items()}


def mean_label_entropy(labels, shards):
  ent = []
  for row, size in zip(shards.indices, shards.sizes, strict=True):
    counts = np.bincount(labels[row[:size]], minlength=10)
    p = counts[counts > 0] / size
    ent.append(-(p * np.log(p)).sum())
  return float(np.mean(ent))


# ---------------------------------------------------------------------------
# read_idx
# ---------------------------------------------------------------------------


@pytest.mark.parametrize('suffix', ['', '.gz'])
def test_read_idx_round_trip(tmp_path, suffix):
  rng = np.random.default_rng(1)
  images = rng.integers(0, 256, (3, 5, 7)).astype(np.uint8)
  labels = np.array([0, 9, 255, 4], np.uint8)
  img_path = write_idx(tmp_path / ('img' + suffix), images)
  lbl_path = write_idx(tmp_path / ('lbl' + suffix), labels)

  got_images = data.read_idx(img_path, expected_ndim=3)
  got_labels = data.read_idx(str(lbl_path))
  assert got_images.dtype == np.uint8 and got_images.shape == (3, 5, 7)
  np.testing.assert_array_equal(got_images, images)
  np.testing.assert_array_equal(got_labels, labels)
  got_images[0, 0, 0] = 1  # Result is writable.


def test_read_idx_standard_magic_numbers(tmp_path):
  path = write_idx(tmp_path / 'x', np.zeros((2, 28, 28)))
  with open(path, 'rb') as f:
    assert struct.unpack('>I', f.read(4))[0] == 2051
  path = write_idx(tmp_path / 'y', np.zeros(2))
  with open(path, 'rb') as f:
    assert struct.unpack('>I', f.read(4))[0] == 2049


@pytest.mark.parametrize('suffix', ['', '.gz'])
def test_read_idx_wrong_magic(tmp_path, suffix):
  path = write_idx(tmp_path / ('bad' + suffix), np.zeros(3), magic=0x01000801)
  with pytest.raises(ValueError, match=re.escape(str(path))):
    data.read_idx(path)


def test_read_idx_unsupported_type_code(tmp_path):
  path = write_idx(tmp_path / 'bad', np.zeros(3), magic=0x00000701)
  with pytest.raises(ValueError, match='type code 0x07') as info:
    data.read_idx(path)
  assert str(path) in str(info.value)


def test_read_idx_wrong_ndim(tmp_path):
  path = write_idx(tmp_path / 'lbl', np.zeros(4))
  with pytest.raises(ValueError, match='1 dimensions, expected 3') as info:
    data.read_idx(path, expected_ndim=3)
  assert str(path) in str(info.value)


@pytest.mark.parametrize('suffix', ['', '.gz'])
def test_read_idx_truncated(tmp_path, suffix):
  path = write_idx(tmp_path / ('cut' + suffix), np.ones((2, 4, 4)), cut=3)
  with pytest.raises(ValueError, match='truncated') as info:
    data.read_idx(path)
  assert str(path) in str(info.value)


def test_read_idx_truncated_header(tmp_path):
  path = tmp_path / 'short'
  path.write_bytes(struct.pack('>I', 2051) + b'\x00\x00')
  with pytest.raises(ValueError, match='truncated'):
    data.read_idx(path)


def test_read_idx_trailing_bytes(tmp_path):
  path = write_idx(tmp_path / 'long', np.ones(5), extra=b'\x00\x01')
  with pytest.raises(ValueError, match='2 trailing bytes') as info:
    data.read_idx(path)
  assert str(path) in str(info.value)


def test_read_idx_corrupt_gzip(tmp_path):
  path = tmp_path / 'bad.gz'
  path.write_bytes(b'this is not gzip data')
  with pytest.raises(ValueError, match=re.escape(str(path))):
    data.read_idx(path)


def test_read_idx_missing_file(tmp_path):
  path = tmp_path / 'nope-idx1-ubyte'
  with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
    data.read_idx(path)


# ---------------------------------------------------------------------------
# load_mnist_idx / load_mnist
# ---------------------------------------------------------------------------


def test_load_mnist_idx_plain_and_gz(tmp_path):
  arrays = write_fake_mnist(tmp_path)
  ds = data.load_mnist_idx(tmp_path)
  assert isinstance(ds, data.Dataset)
  assert ds.train_images.dtype == np.uint8
  assert ds.train_labels.dtype == np.int32
  assert ds.test_labels.dtype == np.int32
  np.testing.assert_array_equal(
    ds.train_images, arrays['train-images-idx3-ubyte']
  )
  np.testing.assert_array_equal(
    ds.train_labels, arrays['train-labels-idx1-ubyte']
  )
  np.testing.assert_array_equal(
    ds.test_images, arrays['t10k-images-idx3-ubyte']
  )
  np.testing.assert_array_equal(
    ds.test_labels, arrays['t10k-labels-idx1-ubyte']
  )


def test_load_mnist_idx_lists_missing_files(tmp_path):
  write_fake_mnist(tmp_path)
  os.remove(tmp_path / 'train-labels-idx1-ubyte')
  os.remove(tmp_path / 't10k-images-idx3-ubyte.gz')
  with pytest.raises(FileNotFoundError) as info:
    data.load_mnist_idx(tmp_path)
  msg = str(info.value)
  assert 'train-labels-idx1-ubyte' in msg
  assert 't10k-images-idx3-ubyte' in msg
  assert 'train-images-idx3-ubyte' not in msg.split('. ')[0]
  assert str(tmp_path) in msg
  assert '--data-dir' in msg and data.DATA_DIR_ENV in msg and 'tfds' in msg


def test_load_mnist_idx_missing_directory(tmp_path):
  missing = tmp_path / 'does-not-exist'
  with pytest.raises(FileNotFoundError, match='not an existing directory'):
    data.load_mnist_idx(missing)


def test_load_mnist_idx_rejects_wrong_image_size(tmp_path):
  write_fake_mnist(tmp_path)
  write_idx(tmp_path / 't10k-images-idx3-ubyte', np.zeros((4, 27, 28)))
  os.remove(tmp_path / 't10k-images-idx3-ubyte.gz')
  with pytest.raises(ValueError, match=r'\(28, 28\)'):
    data.load_mnist_idx(tmp_path)


def test_load_mnist_idx_rejects_count_mismatch(tmp_path):
  write_fake_mnist(tmp_path)
  write_idx(tmp_path / 'train-labels-idx1-ubyte', np.zeros(5))
  with pytest.raises(ValueError, match='5 labels'):
    data.load_mnist_idx(tmp_path)


def test_load_mnist_idx_rejects_bad_labels(tmp_path):
  write_fake_mnist(tmp_path)
  write_idx(tmp_path / 'train-labels-idx1-ubyte', [0, 1, 2, 10, 4, 5])
  with pytest.raises(ValueError, match=r'\[10\] outside 0\.\.9'):
    data.load_mnist_idx(tmp_path)


def test_load_mnist_prefers_argument_then_env(tmp_path, monkeypatch):
  arg_dir, env_dir = tmp_path / 'arg', tmp_path / 'env'
  arg_dir.mkdir()
  env_dir.mkdir()
  write_fake_mnist(arg_dir, n_train=3)
  write_fake_mnist(env_dir, n_train=5)
  monkeypatch.setenv(data.DATA_DIR_ENV, str(env_dir))
  assert len(data.load_mnist(arg_dir).train_labels) == 3
  assert len(data.load_mnist().train_labels) == 5


def test_load_mnist_without_any_source_explains_fix(monkeypatch):
  monkeypatch.delenv(data.DATA_DIR_ENV, raising=False)
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
  with pytest.raises(FileNotFoundError) as info:
    data.load_mnist()
  msg = str(info.value)
  assert data.DATA_DIR_ENV in msg and '--data-dir' in msg
  assert 'farsign_jax[tfds]' in msg
  assert data.DATA_DIR_ENV == 'FARSIGN_DATA_DIR'


def test_load_mnist_tfds_missing_raises_import_error(monkeypatch):
  monkeypatch.setitem(sys.modules, 'tensorflow_datasets', None)
  with pytest.raises(ImportError, match='tfds'):
    data.load_mnist_tfds()


# ---------------------------------------------------------------------------
# Real MNIST (the `mnist` fixture of conftest.py; CI sets FARSIGN_DATA_DIR)
# ---------------------------------------------------------------------------


def test_real_mnist_shapes_and_label_counts(mnist):
  assert mnist.train_images.shape == (60000, 28, 28)
  assert mnist.test_images.shape == (10000, 28, 28)
  assert mnist.train_images.dtype == np.uint8
  assert mnist.train_labels.dtype == np.int32
  np.testing.assert_array_equal(
    np.bincount(mnist.train_labels, minlength=10),
    [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949],
  )
  np.testing.assert_array_equal(
    np.bincount(mnist.test_labels, minlength=10),
    [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
  )
  assert mnist.train_images.max() == 255 and mnist.train_images.min() == 0


def test_real_mnist_subset_and_partition(mnist):
  small = data.subset(mnist, num_train=1000, num_test=200)
  np.testing.assert_array_equal(small.train_labels, mnist.train_labels[:1000])
  shards = data.partition(
    mnist.train_labels, 20, key_or_seed=0, scheme='dirichlet',
    dirichlet_alpha=0.5,
  )  # fmt: skip
  assert int(shards.sizes.sum()) == 60000 and shards.sizes.min() >= 1


# ---------------------------------------------------------------------------
# normalize_images / subset
# ---------------------------------------------------------------------------


def test_normalize_images_numpy():
  images = np.zeros((2, 3, 28, 28), np.uint8)
  images[0, 0, 0, 0] = 255
  images[1, 2, 27, 27] = 51
  out = data.normalize_images(images)
  assert isinstance(out, np.ndarray)
  assert out.dtype == np.float32 and out.shape == (2, 3, 784)
  assert out[0, 0, 0] == 1.0
  assert out[1, 2, 783] == pytest.approx(0.2)
  assert out.min() >= 0.0 and out.max() <= 1.0


def test_normalize_images_jax_and_jit():
  images = jnp.arange(2 * 784, dtype=jnp.int32).reshape(2, 784) % 256
  images = images.astype(jnp.uint8)
  out = jax.jit(data.normalize_images)(images)
  assert isinstance(out, jax.Array)
  assert out.dtype == jnp.float32 and out.shape == (2, 784)
  np.testing.assert_allclose(out, np.asarray(images) / 255.0, rtol=1e-6)


def test_normalize_images_rejects_bad_input():
  with pytest.raises(TypeError, match='uint8'):
    data.normalize_images(np.zeros((1, 28, 28), np.float32))
  with pytest.raises(ValueError, match=r'\(1, 27, 28\)'):
    data.normalize_images(np.zeros((1, 27, 28), np.uint8))


def test_subset():
  ds = data.Dataset(
    np.arange(10 * 784, dtype=np.uint8).reshape(10, 28, 28),
    np.arange(10, dtype=np.int32),
    np.zeros((4, 28, 28), np.uint8),
    np.arange(4, dtype=np.int32),
  )
  small = data.subset(ds, num_train=3)
  np.testing.assert_array_equal(small.train_labels, [0, 1, 2])
  np.testing.assert_array_equal(small.train_images, ds.train_images[:3])
  assert small.test_labels.shape == (4,)
  assert not np.shares_memory(small.train_images, ds.train_images)
  with pytest.raises(ValueError, match='`num_test`.*got 5'):
    data.subset(ds, num_test=5)
  with pytest.raises(ValueError, match='`num_train`'):
    data.subset(ds, num_train=0)
  with pytest.raises(TypeError, match='`num_train`'):
    data.subset(ds, num_train=2.5)


# ---------------------------------------------------------------------------
# partition
# ---------------------------------------------------------------------------


def check_shards(shards, n, num_workers):
  assert shards.indices.dtype == np.int32 and shards.sizes.dtype == np.int32
  assert shards.indices.shape == (num_workers, shards.sizes.max())
  assert shards.sizes.shape == (num_workers,)
  assert shards.sizes.min() >= 1
  owned = np.concatenate(
    [row[:size] for row, size in zip(shards.indices, shards.sizes, strict=True)]
  )
  np.testing.assert_array_equal(np.sort(owned), np.arange(n))
  for row, size in zip(shards.indices, shards.sizes, strict=True):
    assert set(row[size:].tolist()) <= set(row[:size].tolist())


def test_partition_iid_covers_all_evenly():
  labels = np.arange(103) % 10
  shards = data.partition(labels, 7, key_or_seed=3)
  check_shards(shards, 103, 7)
  assert shards.sizes.max() - shards.sizes.min() <= 1


def test_partition_iid_is_seeded():
  labels = np.zeros(50, np.int32)
  a = data.partition(labels, 4, key_or_seed=0)
  b = data.partition(labels, 4, key_or_seed=0)
  c = data.partition(labels, 4, key_or_seed=1)
  np.testing.assert_array_equal(a.indices, b.indices)
  assert not np.array_equal(a.indices, c.indices)
  k1 = data.partition(labels, 4, key_or_seed=jax.random.key(5))
  k2 = data.partition(labels, 4, key_or_seed=jax.random.PRNGKey(5))
  check_shards(k1, 50, 4)
  np.testing.assert_array_equal(k1.indices, k2.indices)


def test_partition_dirichlet_covers_all():
  labels = np.repeat(np.arange(10), 30)
  shards = data.partition(
    labels, 12, key_or_seed=0, scheme='dirichlet', dirichlet_alpha=0.05
  )
  check_shards(shards, 300, 12)


def test_partition_dirichlet_every_worker_nonempty_when_tight():
  # As many workers as examples: only possible if every shard has exactly 1.
  labels = np.array([0, 0, 0, 1, 1, 2, 3, 3])
  shards = data.partition(
    labels, 8, key_or_seed=1, scheme='dirichlet', dirichlet_alpha=0.01
  )
  check_shards(shards, 8, 8)
  np.testing.assert_array_equal(shards.sizes, np.ones(8))


def test_partition_dirichlet_skew_decreases_with_alpha():
  labels = np.repeat(np.arange(10), 200)
  entropies = {}
  for alpha in (0.1, 100.0):
    shards = data.partition(
      labels, 10, key_or_seed=0, scheme='dirichlet', dirichlet_alpha=alpha
    )
    entropies[alpha] = mean_label_entropy(labels, shards)
  assert entropies[100.0] > np.log(10) - 0.1  # Near-uniform label mix.
  assert entropies[0.1] < entropies[100.0] - 0.5


@settings(max_examples=25, deadline=None)
@given(
  n=st.integers(1, 60),
  num_classes=st.integers(1, 10),
  frac=st.floats(0.0, 1.0),
  alpha=st.sampled_from([None, 0.01, 0.5, 10.0]),
  seed=st.integers(0, 2**32),
)
def test_partition_invariants(n, num_classes, frac, alpha, seed):
  labels = np.arange(n) % num_classes
  num_workers = 1 + int(frac * (n - 1))
  if alpha is None:
    shards = data.partition(labels, num_workers, key_or_seed=seed)
  else:
    shards = data.partition(
      labels,
      num_workers,
      key_or_seed=seed,
      scheme='dirichlet',
      dirichlet_alpha=alpha,
    )
  check_shards(shards, n, num_workers)


@pytest.mark.parametrize(
  ('kwargs', 'match'),
  [
    ({'num_workers': 0}, '`num_workers`.*got 0'),
    ({'num_workers': 11}, '`num_workers`.*got 11'),
    ({'scheme': 'shards'}, "`scheme`.*'iid', 'dirichlet'.*'shards'"),
    ({'scheme': 'dirichlet'}, '`dirichlet_alpha`.*None'),
    ({'scheme': 'dirichlet', 'dirichlet_alpha': 0.0}, '`dirichlet_alpha`'),
    ({'scheme': 'dirichlet', 'dirichlet_alpha': -1.0}, '`dirichlet_alpha`'),
    ({'dirichlet_alpha': float('nan')}, '`dirichlet_alpha`'),
    ({'key_or_seed': -1}, '`key_or_seed`'),
  ],
)
def test_partition_bad_args(kwargs, match):
  args = {'num_workers': 2, 'key_or_seed': 0, **kwargs}
  num_workers = args.pop('num_workers')
  with pytest.raises(ValueError, match=match):
    data.partition(np.arange(10), num_workers, **args)


def test_partition_bad_labels():
  with pytest.raises(ValueError, match='`labels`'):
    data.partition(np.zeros((2, 3), np.int32), 2, key_or_seed=0)
  with pytest.raises(TypeError, match='`labels`'):
    data.partition(np.zeros(4, np.float32), 2, key_or_seed=0)


# ---------------------------------------------------------------------------
# sample_minibatch
# ---------------------------------------------------------------------------


def test_sample_minibatch_jit_vmap_stays_in_shard():
  labels = np.repeat(np.arange(10), 20)
  shards = data.partition(
    labels, 6, key_or_seed=2, scheme='dirichlet', dirichlet_alpha=0.3
  )
  keys = jax.random.split(jax.random.key(0), 6)
  sample = jax.jit(
    jax.vmap(data.sample_minibatch, in_axes=(None, 0, 0, None)),
    static_argnums=3,
  )
  batches = np.asarray(sample(shards, jnp.arange(6), keys, 64))
  assert batches.shape == (6, 64) and batches.dtype == np.int32
  for w in range(6):
    own = set(shards.indices[w, : shards.sizes[w]].tolist())
    assert set(batches[w].tolist()) <= own


def test_sample_minibatch_uniform_over_shard_not_padding():
  # Worker 0 owns {10, 11, 12}, padded to length 5 as [10, 11, 12, 10, 11].
  shards = data.WorkerShards(
    indices=np.array([[10, 11, 12, 10, 11], [0, 1, 2, 3, 4]], np.int32),
    sizes=np.array([3, 5], np.int32),
  )
  batch = jax.jit(data.sample_minibatch, static_argnums=3)(
    shards, 0, jax.random.key(1), 30000
  )
  freq = np.bincount(np.asarray(batch), minlength=13)[10:13] / 30000
  np.testing.assert_allclose(freq, [1 / 3] * 3, atol=0.02)


def test_sample_minibatch_bad_batch_size():
  shards = data.partition(np.arange(4), 2, key_or_seed=0)
  with pytest.raises(ValueError, match='`batch_size`.*got 0'):
    data.sample_minibatch(shards, 0, jax.random.key(0), 0)
