"""Checkpoints of a running simulation: save every so often, resume later.

A checkpoint holds everything a run needs to continue bit for bit: the
simulator's :class:`~farsign_jax._src.simulator.engine.SimState` (server
state, workers' clocks and views, counters; it holds no PRNG key, since all
randomness derives from the seed and counters), the accuracy curve recorded so
far and the settings of the run. The arrays go through orbax-checkpoint; the
curve and the settings are a JSON item of the same orbax step, so both are
committed together, atomically (orbax writes a step to a temporary folder and
renames it when complete: a run killed mid-save leaves the previous step).
Only the last ``max_to_keep`` steps are kept.

Checkpoints are taken at evaluation points only (the simulator's chunk
boundaries), so checkpointing never changes a run's trajectory and a resumed
run matches an uninterrupted one exactly.

Example:
  A short FAR-SIGN run on a tiny synthetic data set (an MNIST run builds its
  workers the same way from ``load_mnist()``), checkpointed every 50
  messages into a fresh folder, then restored:

  >>> import tempfile
  >>> import jax, numpy as np
  >>> import farsign_jax as fs
  >>> from farsign_jax import data, models, simulator
  >>> labels = np.arange(200, dtype=np.int32) % 10
  >>> images = np.zeros((200, 28, 28), np.uint8)
  >>> dataset = data.Dataset(images, labels, images[:20], labels[:20])
  >>> model = models.flat_model(models.make_model('logreg'), jax.random.key(0))
  >>> workers = simulator.build_workers(
  ...     fs.far_sign_method(model.num_params, 0.1, 0.01),
  ...     fs.make_attack('sign_flip'),
  ...     simulator.SimulationConfig(num_workers=8, batch_size=4),
  ...     model, dataset)
  >>> checkpointer = SimulationCheckpointer(tempfile.mkdtemp(), every=50)
  >>> settings = {'method': 'farsign', 'seed': 0}
  >>> result = simulator.simulate(
  ...     workers, 100, evaluate=lambda params: 0.0, eval_every=50,
  ...     on_chunk=lambda s, c: checkpointer.maybe_save(s, c, settings))
  >>> checkpointer.latest_step()
  100
  >>> template = simulator.init_state(workers)
  >>> state, curve, saved = checkpointer.restore(template)
  >>> int(state.version), curve[-1]['messages'], saved == settings
  (100, 100, True)

  A resumed run passes ``state=state, curve=curve`` to ``simulate``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

_FORMAT = 1


class SimulationCheckpointer:
  """Saves and restores simulation states in one directory.

  Attributes:
    directory: the absolute path of the checkpoint directory.
    every: messages between periodic checkpoints.
  """

  def __init__(self, directory: str, every: int, max_to_keep: int = 2):
    """Opens (and creates if needed) a checkpoint directory.

    Args:
      directory: where the checkpoints live; created if missing.
      every: save at the first evaluation point at least ``every`` messages
        after the previous checkpoint.
      max_to_keep: how many of the latest checkpoints to keep.

    Raises:
      ValueError: if ``directory`` is empty or names a file, or ``every`` or
        ``max_to_keep`` is not a positive integer.
    """
    if not directory:
      raise ValueError(
        f'`directory` must name a folder, got {directory!r}.'
      )
    directory = os.path.abspath(os.path.expanduser(os.fspath(directory)))
    if os.path.exists(directory) and not os.path.isdir(directory):
      raise ValueError(
        f'`directory={directory!r}` is a file; a checkpoint directory must '
        'be a folder (or not exist yet).'
      )
    for name, value in (('every', every), ('max_to_keep', max_to_keep)):
      if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
          f'`{name}` must be a positive integer, got {value!r}.'
        )
    self.directory = directory
    self.every = every
    self._manager = ocp.CheckpointManager(
      directory,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=max_to_keep,
        # Synchronous: the simulator donates the state's buffers to the
        # next chunk as soon as the save returns.
        enable_async_checkpointing=False,
        create=True,
      ),
    )
    self._last_saved = self._manager.latest_step()

  def latest_step(self) -> int | None:
    """Message count of the latest checkpoint, or ``None`` if there is none."""
    return self._manager.latest_step()

  def maybe_save(self, state, curve: list[dict], settings: dict) -> bool:
    """Saves if ``every`` messages passed since the last checkpoint.

    Returns:
      Whether a checkpoint was written.
    """
    step = int(state.version)
    last = 0 if self._last_saved is None else self._last_saved
    if step - last < self.every:
      return False
    return self.save(state, curve, settings)

  def save(self, state, curve: list[dict], settings: dict) -> bool:
    """Saves ``state``, ``curve`` and ``settings`` under the message count.

    Returns:
      Whether a checkpoint was written (``False`` if one already exists at
      this message count).

    Raises:
      ValueError: if ``state`` holds PRNG keys (a simulation state never
        does; keys are derived from the seed and counters).
    """
    step = int(state.version)
    if step in self._manager.all_steps():
      return False
    leaves, treedef = jax.tree.flatten(state)
    for leaf in leaves:
      if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        raise ValueError(
          'A simulation state must hold no PRNG key (`state` has a leaf of '
          f'dtype {leaf.dtype}); derive randomness from the seed instead.'
        )
    meta = {
      'format': _FORMAT,
      'messages': step,
      'curve': list(curve),
      'settings': settings,
      'treedef': str(treedef),
      'leaves': [[list(leaf.shape), str(leaf.dtype)] for leaf in leaves],
    }
    self._manager.save(
      step,
      args=ocp.args.Composite(
        state=ocp.args.StandardSave(_by_name(leaves)),
        meta=ocp.args.JsonSave(meta),
      ),
    )
    self._manager.wait_until_finished()
    self._last_saved = step
    return True

  def saved_settings(self) -> dict | None:
    """The settings stored with the latest checkpoint, without its arrays."""
    step = self.latest_step()
    if step is None:
      return None
    return self._meta(step)['settings']

  def restore(self, template) -> tuple[Any, list[dict], dict]:
    """Restores the latest checkpoint.

    Args:
      template: a state of the same structure, shapes and dtypes (for
        example ``engine.init_state(workers)``); its arrays' shardings are
        used for the restored ones.

    Returns:
      ``(state, curve, settings)``.

    Raises:
      FileNotFoundError: if the directory holds no checkpoint.
      ValueError: if the checkpoint's structure, shapes or dtypes differ from
        ``template``'s.
    """
    step = self.latest_step()
    if step is None:
      raise FileNotFoundError(
        f'No checkpoint in {self.directory!r} to resume from.'
      )
    meta = self._meta(step)
    leaves, treedef = jax.tree.flatten(template)
    expected = [[list(leaf.shape), str(leaf.dtype)] for leaf in leaves]
    if meta['treedef'] != str(treedef) or meta['leaves'] != expected:
      raise ValueError(
        f'The checkpoint at message {step} in {self.directory!r} does not '
        'fit this simulation: its state has a different structure, shapes '
        'or dtypes (saved by another method, model or worker count?).'
      )
    abstract = [
      jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
      for leaf in leaves
    ]
    restored = self._read(
      step,
      ocp.args.Composite(state=ocp.args.StandardRestore(_by_name(abstract))),
    )['state']
    state = jax.tree.unflatten(
      treedef, [restored[name] for name in _by_name(leaves)]
    )
    return state, meta['curve'], meta['settings']

  def close(self) -> None:
    """Waits for pending writes and releases the directory."""
    self._manager.wait_until_finished()
    self._manager.close()

  def _read(self, step: int, args):
    """Restores ``args`` of ``step``; unreadable files raise CheckpointError."""
    try:
      return self._manager.restore(step, args=args)
    except Exception as error:  # orbax, TensorStore and JSON raise many kinds
      reason = str(error).strip().splitlines()[0][:200] if str(error) else ''
      raise CheckpointError(
        f'The checkpoint at message {step} in {self.directory!r} cannot be '
        f'read ({type(error).__name__}: {reason}); it may be truncated or '
        'corrupted. Delete that step\'s folder to resume from the one '
        'before, or start afresh in an empty directory.'
      ) from error

  def _meta(self, step: int) -> dict:
    meta = self._read(
      step, ocp.args.Composite(meta=ocp.args.JsonRestore())
    )['meta']
    if meta.get('format') != _FORMAT:
      raise ValueError(
        f'The checkpoint at message {step} in {self.directory!r} has format '
        f'{meta.get("format")!r}; this version reads format {_FORMAT}.'
      )
    return meta


class CheckpointError(ValueError):
  """A checkpoint exists but cannot be read."""


def _by_name(leaves: list) -> dict:
  return {f'leaf_{i:04d}': leaf for i, leaf in enumerate(leaves)}


def settings_differences(
  saved: dict, requested: dict, ignore: tuple[str, ...] = ()
) -> list[str]:
  """Settings that differ between a checkpoint and a requested run.

  Args:
    saved: the settings stored with the checkpoint.
    requested: the settings of the run that wants to resume.
    ignore: names allowed to differ (for example the message budget).

  Returns:
    One ``'name: saved -> requested'`` line per difference, sorted.
  """
  names = (set(saved) | set(requested)) - set(ignore)
  missing = object()
  lines = []
  for name in sorted(names):
    old, new = saved.get(name, missing), requested.get(name, missing)
    if _normalise(old) != _normalise(new):
      old = '(absent)' if old is missing else repr(old)
      new = '(absent)' if new is missing else repr(new)
      lines.append(f'{name}: {old} -> {new}')
  return lines


def _normalise(value):
  # JSON turns tuples into lists and NumPy scalars into numbers.
  if isinstance(value, (list, tuple)):
    return [_normalise(v) for v in value]
  if isinstance(value, np.generic):
    return value.item()
  return value
