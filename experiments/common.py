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
import tempfile
from collections.abc import Callable

import jax
import jax.numpy as jnp

from farsign_jax._src import attacks as attacks_lib
from farsign_jax._src import data as data_lib
from farsign_jax._src import models as models_lib
from farsign_jax._src.methods import registry
from farsign_jax._src.simulator import driver
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


def run(
  config: RunConfig,
  dataset: data_lib.Dataset,
  progress: Callable[[dict], None] | None = None,
  **simulate_kwargs,
) -> dict:
  """Runs one configuration and returns its JSON-ready record.

  Returns:
    A dict with ``config`` (every setting as run), the summary figures of
    :meth:`SimulationResult.summary`, and ``curve``.
  """
  simulation = config.simulation()
  model = models_lib.flat_model(
    models_lib.make_model(config.model), jax.random.key(config.seed)
  )
  method = registry.make_method(
    config.method, model.num_params, config.method_settings()
  )
  workers = driver.build_workers(
    method, make_attack(config), simulation, model, dataset
  )
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
  record = {'config': config.resolved()}
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
  try:
    with os.fdopen(handle, 'w') as f:
      json.dump(payload, f, indent=1)
      f.write('\n')
    os.replace(temporary, path)
  except BaseException:
    os.unlink(temporary)
    raise
