"""One experiment run, shared by the command-line entry points.

A :class:`RunConfig` holds every setting of a run; :func:`run` builds the
method, the attack, the workers and the data from it, simulates, and returns a
JSON-ready record. The entry points (``experiments.mnist``,
``experiments.compare``) only parse flags and write files.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import tempfile
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from farsign_jax._src import attacks as attacks_lib
from farsign_jax._src import data as data_lib
from farsign_jax._src import models as models_lib
from farsign_jax._src.methods import registry
from farsign_jax._src.simulator import checkpoint, driver
from farsign_jax._src.simulator.clock import ComputeTimeModel
from farsign_jax._src.simulator.config import SimulationConfig

# The constructor argument that `attack_strength` sets, per attack.
ATTACK_STRENGTH = {
  'sign_flip': 'scale',
  'gaussian': 'std',
  'constant': 'value',
  'alie': 'z',
  'ipm': 'epsilon',
}


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Every setting of one run. Defaults are those of ``experiments.mnist``."""

  method: str = 'farsign'
  model: str = 'logreg'
  directions: str = 'coordinate'
  num_directions: int | None = None
  oracle: str = 'first_order'
  smoothing: float = 1e-3
  learning_rate: float | None = None
  learning_rate_decay: float = 1.0
  tracking_rate: float | None = None
  tracking_rate_decay: float = 0.0
  decay_steps: float = 5000.0
  workers: int = 100
  byzantine_fraction: float = 0.2
  attack: str = 'none'
  attack_strength: float | None = None
  stragglers: float = 0.1
  straggler_slowdown: float = 5.0
  compute_time: str = 'exponential'
  messages: int = 60_000
  batch_size: int = 128
  tick_size: int | None = None
  staleness: str = 'snapshot'
  max_staleness: int | None = None
  partition: str = 'iid'
  dirichlet_alpha: float = 0.5
  eval_every: int = 1000
  train_examples: int | None = None
  seed: int = 0

  def simulation(self) -> SimulationConfig:
    return SimulationConfig(
      num_workers=self.workers,
      byzantine_fraction=self.byzantine_fraction,
      straggler_fraction=self.stragglers,
      straggler_slowdown=self.straggler_slowdown,
      compute_time=ComputeTimeModel(self.compute_time),
      batch_size=self.batch_size,
      tick_size=self.tick_size,
      staleness=self.staleness,
      max_staleness=self.max_staleness,
      partition=self.partition,
      dirichlet_alpha=self.dirichlet_alpha,
      seed=self.seed,
    )

  def method_settings(self) -> registry.MethodSettings:
    simulation = self.simulation()
    return registry.MethodSettings(
      learning_rate=self.learning_rate,
      learning_rate_decay=self.learning_rate_decay,
      tracking_rate=self.tracking_rate,
      tracking_rate_decay=self.tracking_rate_decay,
      decay_steps=self.decay_steps,
      directions=self.directions,
      num_directions=self.num_directions,
      oracle=self.oracle,
      smoothing=self.smoothing,
      num_workers=self.workers,
      num_byzantine=simulation.num_byzantine,
      seed=self.seed,
    )

  def resolved(self) -> dict:
    """The settings as run, with the method's default step sizes filled in."""
    settings = registry.resolve_settings(self.method, self.method_settings())
    return dataclasses.asdict(self) | {
      'learning_rate': settings.learning_rate,
      'tracking_rate': settings.tracking_rate,
      'tick_size': self.simulation().resolved_tick_size,
    }


def make_attack(config: RunConfig) -> attacks_lib.Attack:
  """The attack of a run, with its strength and, for ALIE, ``n`` and ``f``."""
  kwargs = {}
  if config.attack_strength is not None:
    if config.attack not in ATTACK_STRENGTH:
      raise ValueError(
        f'`attack_strength` has no meaning for attack {config.attack!r}; '
        f'it applies to {", ".join(ATTACK_STRENGTH)}.'
      )
    kwargs[ATTACK_STRENGTH[config.attack]] = config.attack_strength
  if config.attack == 'alie':
    kwargs['num_workers'] = config.workers
    kwargs['num_byzantine'] = config.simulation().num_byzantine
  return attacks_lib.make_attack(config.attack, **kwargs)


def load_data(data_dir: str | None, train_examples: int | None = None):
  dataset = data_lib.load_mnist(data_dir)
  if train_examples is not None:
    dataset = data_lib.subset(dataset, num_train=train_examples)
  return dataset


def build_method(config: RunConfig, dataset: data_lib.Dataset | None = None):
  """The model and the method of a run, checked against its settings.

  Needs no data, so entry points call it to reject bad settings (a ``k``
  larger than the model, an adversarial fraction the method cannot tolerate)
  before loading any. A method that needs trusted server data (Zeno++) takes
  it from ``dataset``'s training examples; without ``dataset`` it gets a
  placeholder set, good for checking settings only.

  Returns:
    ``(flat_model, method)``.

  Raises:
    ValueError: for settings the model or method rejects.
  """
  model = models_lib.flat_model(
    models_lib.make_model(config.model), jax.random.key(config.seed)
  )
  settings = config.method_settings()
  if registry.METHODS[config.method].needs_trusted_data:
    images, labels = (
      (np.zeros((1, 784), np.uint8), np.zeros(1, np.int32))
      if dataset is None
      else (dataset.train_images, dataset.train_labels)
    )
    settings = registry.with_trusted_data(settings, model.loss, images, labels)
  method = registry.make_method(config.method, model.num_params, settings)
  driver.check_byzantine_fraction(method, config.byzantine_fraction)
  return model, method


# Settings a resumed run may change: they do not alter the trajectory.
RESUMABLE_CHANGES = ('messages',)


class Interrupted(Exception):
  """A run stopped on a signal, after saving a checkpoint if it had any.

  Attributes:
    signum: the signal that stopped it.
    messages: the messages applied when it stopped.
  """

  def __init__(self, signum: int, messages: int):
    super().__init__(
      f'stopped by {signal.Signals(signum).name} at message {messages}'
    )
    self.signum = signum
    self.messages = messages


class StopOnSignals:
  """Turns SIGINT and SIGTERM into a request to stop at the next checkpoint.

  Inside the ``with`` block the first signal only sets :attr:`signum`; the
  run saves at its next evaluation point and raises :class:`Interrupted`. A
  second signal stops at once (``KeyboardInterrupt``), without saving.
  """

  SIGNALS = (signal.SIGINT, signal.SIGTERM)

  def __init__(self):
    self.signum: int | None = None
    self._previous = {}

  def _handle(self, signum, frame):
    del frame
    if self.signum is not None:
      raise KeyboardInterrupt
    self.signum = signum

  def __enter__(self):
    for signum in self.SIGNALS:
      self._previous[signum] = signal.signal(signum, self._handle)
    return self

  def __exit__(self, *exc_info):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)
    return False


def check_resumable(
  config: RunConfig, checkpointer: checkpoint.SimulationCheckpointer
) -> int:
  """Checks that ``config`` may continue the latest checkpoint.

  Returns:
    The message count of the checkpoint.

  Raises:
    ValueError: if there is no checkpoint, if its settings differ from
      ``config``'s in anything but :data:`RESUMABLE_CHANGES`, or if it is
      already past ``config.messages``.
  """
  step = checkpointer.latest_step()
  if step is None:
    raise ValueError(
      f'`--resume`: no checkpoint in {checkpointer.directory!r} to resume '
      'from; run once without --resume to start one.'
    )
  differences = checkpoint.settings_differences(
    checkpointer.saved_settings(), config.resolved(), RESUMABLE_CHANGES
  )
  if differences:
    raise ValueError(
      f'`--resume`: the checkpoint in {checkpointer.directory!r} was saved '
      'by a run with other settings (saved -> requested): '
      + '; '.join(differences)
      + '. Only --messages may change when resuming.'
    )
  if step > config.messages:
    raise ValueError(
      f'`--messages={config.messages}` is below the {step} messages the '
      f'checkpoint in {checkpointer.directory!r} has already applied.'
    )
  return step


def run(
  config: RunConfig,
  dataset: data_lib.Dataset,
  progress: Callable[[dict], None] | None = None,
  checkpointer: checkpoint.SimulationCheckpointer | None = None,
  resume: bool = False,
  stop: StopOnSignals | None = None,
) -> dict:
  """Runs one configuration and returns its JSON-ready record.

  Args:
    config: the settings.
    dataset: MNIST.
    progress: called with each new curve point.
    checkpointer: if given, the run saves its state there every
      ``checkpointer.every`` messages (at evaluation points), on a stop
      request and at the end.
    resume: continue from ``checkpointer``'s latest checkpoint (check it
      first with :func:`check_resumable`).
    stop: if it has caught a signal, the run stops at its next evaluation
      point, saves, and raises :class:`Interrupted`.

  Returns:
    A dict with ``config`` (every setting as run), the summary figures of
    :meth:`SimulationResult.summary`, and ``curve``.

  Raises:
    Interrupted: when ``stop`` caught a signal.
  """
  simulation = config.simulation()
  model, method = build_method(config, dataset)
  workers = driver.build_workers(
    method, make_attack(config), simulation, model, dataset
  )
  simulate_kwargs = {}
  settings = config.resolved()

  def on_chunk(state, curve):
    if checkpointer is not None:
      checkpointer.maybe_save(state, curve, settings)
    if stop is not None and stop.signum is not None:
      if checkpointer is not None:
        checkpointer.save(state, curve, settings)
      raise Interrupted(stop.signum, int(state.version))

  simulate_kwargs['on_chunk'] = on_chunk
  if resume:
    if checkpointer is None:
      raise ValueError('`resume=True` needs a `checkpointer`.')
    from farsign_jax._src.simulator import engine, rounds

    template = (
      rounds.init_rounds(workers)
      if method.synchronous
      else engine.init_state(workers)
    )
    state, curve, _ = checkpointer.restore(template)
    simulate_kwargs.update(state=state, curve=curve)
  test_images = jnp.asarray(data_lib.normalize_images(dataset.test_images))
  test_labels = jnp.asarray(dataset.test_labels)
  evaluate = jax.jit(lambda p: model.accuracy(p, test_images, test_labels))

  if method.synchronous:
    from farsign_jax._src.simulator import rounds

    result = rounds.simulate_rounds(
      workers, config.messages, evaluate, config.eval_every, progress,
      **simulate_kwargs,
    )
  else:
    result = driver.simulate(
      workers, config.messages, evaluate, config.eval_every, progress,
      **simulate_kwargs,
    )
  if checkpointer is not None:
    checkpointer.save(result.state, result.curve, settings)
  record = {'config': settings}
  record.update(result.summary())
  record['byzantine_worker_fraction'] = simulation.num_byzantine / (
    simulation.num_workers
  )
  record['curve'] = result.curve
  return record


def write_json_atomically(path: str, payload) -> None:
  """Writes JSON to ``path`` through a temporary file and a rename.

  A crash mid-write leaves the previous file intact, never a truncated one.
  """
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  handle, temporary = tempfile.mkstemp(dir=directory, suffix='.tmp')
  umask = os.umask(0)
  os.umask(umask)
  try:
    os.chmod(temporary, 0o666 & ~umask)  # mkstemp makes it owner-only
    with os.fdopen(handle, 'w') as f:
      json.dump(payload, f, indent=1)
      f.write('\n')
    os.replace(temporary, path)
  except BaseException:
    os.unlink(temporary)
    raise
