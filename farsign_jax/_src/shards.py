"""Splitting the training set across workers, and sampling their minibatches.

:func:`partition` assigns the examples to simulated workers (IID, or with a
Dirichlet label skew) once, on the host, with NumPy; the resulting
:class:`WorkerShards` is then sampled inside ``jit`` and ``vmap`` by
:func:`sample_minibatch`.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

PARTITION_SCHEMES = ('iid', 'dirichlet')
"""Names accepted by the ``scheme`` argument of :func:`partition`."""


class WorkerShards(NamedTuple):
  """Assignment of training examples to workers.

  Attributes:
    indices: ``int32`` array ``[num_workers, max_shard]``. Row ``w`` starts
      with the ``sizes[w]`` example indices owned by worker ``w``; the rest of
      the row repeats those same indices, so every entry is a valid index.
    sizes: ``int32`` array ``[num_workers]``, the shard sizes (all >= 1).
  """

  indices: np.ndarray
  sizes: np.ndarray


# --------------------------------------------------------------------------
# Partitioning across workers
# --------------------------------------------------------------------------


def _host_rng(key_or_seed: Any) -> np.random.Generator:
  """A NumPy Generator from a non-negative int seed or a JAX PRNG key."""
  if isinstance(key_or_seed, (int, np.integer)) and not isinstance(
    key_or_seed, bool
  ):
    if key_or_seed < 0:
      raise ValueError(
        f'`key_or_seed` must be a non-negative int or a JAX PRNG key, got '
        f'{key_or_seed!r}.'
      )
    return np.random.default_rng(int(key_or_seed))
  try:
    if jnp.issubdtype(key_or_seed.dtype, jax.dtypes.prng_key):
      words = np.asarray(jax.random.key_data(key_or_seed))
    else:
      words = np.asarray(key_or_seed)
  except (AttributeError, TypeError) as err:
    raise TypeError(
      f'`key_or_seed` must be a non-negative int or a JAX PRNG key, got '
      f'{key_or_seed!r}.'
    ) from err
  if words.dtype != np.uint32 or words.ndim != 1:
    raise TypeError(
      '`key_or_seed` must be a non-negative int or a single JAX PRNG key, got '
      f'an array of dtype {words.dtype} and shape {words.shape}.'
    )
  return np.random.default_rng(np.random.SeedSequence(words.tolist()))


def _check_labels(labels: Any) -> np.ndarray:
  labels = np.asarray(labels)
  if labels.ndim != 1 or labels.size == 0:
    raise ValueError(
      f'`labels` must be a non-empty 1-D array, got shape {labels.shape}.'
    )
  if not np.issubdtype(labels.dtype, np.integer):
    raise TypeError(f'`labels` must have an integer dtype, got {labels.dtype}.')
  return labels


def _dirichlet_shards(
  labels: np.ndarray,
  num_workers: int,
  alpha: float,
  rng: np.random.Generator,
) -> list[np.ndarray]:
  parts: list[list[np.ndarray]] = [[] for _ in range(num_workers)]
  for cls in np.unique(labels):
    members = np.flatnonzero(labels == cls)
    rng.shuffle(members)
    props = rng.dirichlet(np.full(num_workers, alpha))
    if not np.all(np.isfinite(props)) or props.sum() <= 0:
      # Numerical underflow for tiny alpha: give the class to one worker.
      props = np.zeros(num_workers)
      props[rng.integers(num_workers)] = 1.0
    cuts = np.floor(np.cumsum(props)[:-1] * len(members)).astype(np.int64)
    cuts = np.clip(cuts, 0, len(members))
    for worker, chunk in enumerate(np.split(members, cuts)):
      parts[worker].append(chunk)
  shards = [np.sort(np.concatenate(p)) for p in parts]
  # Every worker needs at least one example. Since num_workers <= n, while a
  # shard is empty the largest one has at least two, so moving one is safe.
  for worker in range(num_workers):
    if shards[worker].size == 0:
      donor = int(np.argmax([s.size for s in shards]))
      pick = rng.integers(shards[donor].size)
      shards[worker] = shards[donor][pick : pick + 1]
      shards[donor] = np.delete(shards[donor], pick)
  return shards


def partition(
  labels: Any,
  num_workers: int,
  *,
  key_or_seed: Any,
  scheme: str = 'iid',
  dirichlet_alpha: float | None = None,
) -> WorkerShards:
  """Splits example indices across workers, IID or with label skew.

  Runs on the host with NumPy, seeded only from ``key_or_seed`` (no global
  random state).

  * ``'iid'``: a random permutation split into ``num_workers`` contiguous
    pieces whose sizes differ by at most one.
  * ``'dirichlet'``: for each class, proportions over workers are drawn from
    ``Dirichlet(dirichlet_alpha)`` and that class's examples are dealt out
    accordingly. Small ``alpha`` gives strongly skewed label mixes; large
    ``alpha`` approaches IID. A worker left empty receives one example taken
    at random from the largest shard.

  Every example is assigned to exactly one worker and every worker gets at
  least one example.

  Args:
    labels: 1-D integer array of labels (only its length matters for IID).
    num_workers: Number of workers, between 1 and ``len(labels)``.
    key_or_seed: Non-negative int seed, or a JAX PRNG key (its bits seed the
      NumPy generator).
    scheme: One of ``PARTITION_SCHEMES``: ``'iid'`` or ``'dirichlet'``.
    dirichlet_alpha: Concentration ``> 0``; required for ``'dirichlet'``,
      ignored for ``'iid'``.

  Returns:
    :class:`WorkerShards` with ``int32`` ``indices`` of shape
    ``[num_workers, max_shard]`` (each row padded by repeating its own
    indices) and ``int32`` ``sizes`` of shape ``[num_workers]``.

  Raises:
    TypeError: If ``labels`` is not an integer array, ``num_workers`` is not
      an int, or ``key_or_seed`` is neither an int nor a PRNG key.
    ValueError: If ``num_workers`` is out of range, ``scheme`` is unknown,
      ``dirichlet_alpha`` is missing or not a positive finite number, or
      ``labels`` is not a non-empty 1-D array.

  Example:
    1000 labels (with MNIST: ``ds.train_labels``) dealt to 10 workers with
    Dirichlet label skew:

    >>> import numpy as np
    >>> labels = np.arange(1000, dtype=np.int32) % 10
    >>> shards = partition(labels, 10, key_or_seed=0,
    ...                    scheme='dirichlet', dirichlet_alpha=0.5)
    >>> sizes = shards.sizes
    >>> len(sizes), int(sizes.sum()), bool(sizes.min() >= 1)
    (10, 1000, True)
  """
  labels = _check_labels(labels)
  n = labels.shape[0]
  if not isinstance(num_workers, (int, np.integer)) or isinstance(
    num_workers, bool
  ):
    raise TypeError(f'`num_workers` must be an int, got {num_workers!r}.')
  if not 1 <= num_workers <= n:
    raise ValueError(
      f'`num_workers` must be between 1 and the number of examples ({n}), '
      f'got {num_workers}.'
    )
  num_workers = int(num_workers)
  if scheme not in PARTITION_SCHEMES:
    raise ValueError(
      f'`scheme` must be one of {PARTITION_SCHEMES}, got {scheme!r}.'
    )
  if dirichlet_alpha is not None:
    try:
      alpha_ok = math.isfinite(dirichlet_alpha) and dirichlet_alpha > 0
    except TypeError:
      alpha_ok = False
    if not alpha_ok or isinstance(dirichlet_alpha, bool):
      raise ValueError(
        '`dirichlet_alpha` must be a positive finite number, got '
        f'{dirichlet_alpha!r}.'
      )
  rng = _host_rng(key_or_seed)

  if scheme == 'iid':
    shards = np.array_split(rng.permutation(n), num_workers)
    shards = [np.sort(s) for s in shards]
  else:
    if dirichlet_alpha is None:
      raise ValueError(
        "`dirichlet_alpha` is required with scheme='dirichlet' (a positive "
        'number such as 0.1 for strong skew or 100 for near-IID), got None.'
      )
    shards = _dirichlet_shards(labels, num_workers, float(dirichlet_alpha), rng)

  sizes = np.array([s.size for s in shards], dtype=np.int32)
  max_shard = int(sizes.max())
  indices = np.stack([np.resize(s, max_shard) for s in shards])
  return WorkerShards(indices=indices.astype(np.int32), sizes=sizes)


def sample_minibatch(
  shards: WorkerShards, worker: Any, key: jax.Array, batch_size: int
) -> jax.Array:
  """Draws a minibatch of example indices from one worker's shard.

  Positions are drawn uniformly with replacement from
  ``[0, shards.sizes[worker])`` and looked up in ``shards.indices[worker]``,
  so padding never changes the distribution. Traceable: works under ``jit``
  and ``vmap`` over ``worker`` and ``key``; ``batch_size`` must be static.

  Args:
    shards: The :class:`WorkerShards` from :func:`partition`.
    worker: Integer worker id (may be a traced scalar).
    key: JAX PRNG key.
    batch_size: Number of indices to draw, a Python int >= 1.

  Returns:
    ``int32`` array of shape ``[batch_size]`` of example indices.

  Raises:
    ValueError: If ``batch_size`` is not a positive int.

  Example:
    One minibatch for each of 4 workers, drawn in a single ``vmap``:

    >>> import jax, jax.numpy as jnp, numpy as np
    >>> shards = partition(np.arange(100, dtype=np.int32) % 10, 4,
    ...                    key_or_seed=0)
    >>> keys = jax.random.split(jax.random.key(0), 4)
    >>> batch = jax.vmap(sample_minibatch, in_axes=(None, 0, 0, None))(
    ...     shards, jnp.arange(4), keys, 32)
    >>> batch.shape
    (4, 32)
  """
  if (
    not isinstance(batch_size, (int, np.integer))
    or isinstance(batch_size, bool)
    or batch_size < 1
  ):
    raise ValueError(
      f'`batch_size` must be a positive Python int, got {batch_size!r}.'
    )
  sizes = jnp.asarray(shards.sizes, dtype=jnp.int32)
  rows = jnp.asarray(shards.indices, dtype=jnp.int32)
  positions = jax.random.randint(
    key, (int(batch_size),), 0, sizes[worker], dtype=jnp.int32
  )
  return rows[worker, positions]
