"""Running a simulation with evaluations: the loop that experiments call.

The simulation advances on device between evaluation points; at each point
the host measures test accuracy and records a curve point with the message
count, the virtual time and the real seconds spent so far. Progress is
reported through an optional callback, so the library itself prints nothing.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from farsign_jax._src import data as data_lib
from farsign_jax._src.attacks import Attack
from farsign_jax._src.methods.base import Method
from farsign_jax._src.models import FlatModel
from farsign_jax._src.simulator import engine
from farsign_jax._src.simulator.config import SimulationConfig


def check_byzantine_fraction(method: Method, byzantine_fraction: float):
  """Checks that ``method`` tolerates ``byzantine_fraction`` adversaries.

  Raises:
    ValueError: if the fraction is at or above the method's
      ``max_byzantine_fraction``.
  """
  limit = method.max_byzantine_fraction
  if limit is not None and byzantine_fraction >= limit:
    raise ValueError(
      f'`byzantine_fraction={byzantine_fraction!r}` is beyond what '
      f'{method.name!r} tolerates: it needs a fraction below {limit}.'
    )


def build_workers(
  method: Method,
  attack: Attack,
  config: SimulationConfig,
  model: FlatModel,
  dataset: data_lib.Dataset,
) -> engine.Workers:
  """Places the data on device, splits it and assigns the workers' roles.

  Raises:
    ValueError: if the adversarial fraction exceeds what ``method`` tolerates.
  """
  check_byzantine_fraction(method, config.byzantine_fraction)
  shards = data_lib.partition(
    dataset.train_labels,
    config.num_workers,
    key_or_seed=config.seed,
    scheme=config.partition,
    dirichlet_alpha=(
      config.dirichlet_alpha if config.partition == 'dirichlet' else None
    ),
  )
  byzantine, slowdown = engine.assign_roles(config)
  images = np.asarray(dataset.train_images).reshape(
    len(dataset.train_images), -1
  )
  return engine.Workers(
    method=method,
    attack=attack,
    config=config,
    loss=model.loss,
    train_images=jnp.asarray(images, jnp.uint8),
    train_labels=jnp.asarray(dataset.train_labels, jnp.int32),
    shards=jax.tree.map(jnp.asarray, shards),
    byzantine=jnp.asarray(byzantine),
    slowdown=jnp.asarray(slowdown),
    init_params=jnp.asarray(model.init_params),
  )


@dataclasses.dataclass
class SimulationResult:
  """Outcome of :func:`simulate`.

  Attributes:
    state: the final simulation state.
    curve: one dict per evaluation: ``messages``, ``virtual_time``,
      ``real_time`` and ``accuracy``.
    real_seconds: wall-clock seconds of the whole run, compilation included.
    compile_seconds: wall-clock seconds of the first chunk, which compiles.
    compile_messages: messages applied by the end of that first chunk.
    resumed_seconds: of ``real_seconds``, those spent before the run was
      resumed from a checkpoint (left out of the throughput).
  """

  state: Any
  curve: list[dict]
  real_seconds: float
  compile_seconds: float
  compile_messages: int = 0
  resumed_seconds: float = 0.0

  @property
  def messages(self) -> int:
    return int(self.state.version)

  @property
  def final_accuracy(self) -> float:
    return self.curve[-1]['accuracy']

  @property
  def best_accuracy(self) -> float:
    return max(point['accuracy'] for point in self.curve)

  def virtual_time_to(
    self, accuracy: float, sustained: bool = False
  ) -> float | None:
    """Virtual time of the first evaluation at or above ``accuracy``.

    With ``sustained``, the first evaluation from which every later one
    stays at or above ``accuracy``: early curves oscillate, and a single
    lucky evaluation should not count as having arrived.
    """
    reached = None
    for point in self.curve:
      if point['accuracy'] >= accuracy:
        if reached is None or not sustained:
          reached = point['virtual_time']
        if not sustained:
          return reached
      else:
        reached = None
    return reached

  def summary(self) -> dict:
    """Scalar figures of the run, ready for JSON."""
    state = self.state
    messages = self.messages
    return {
      'final_accuracy': self.final_accuracy,
      'best_accuracy': self.best_accuracy,
      'virtual_time_to_80': self.virtual_time_to(0.8),
      'virtual_time_to_80_sustained': self.virtual_time_to(0.8, True),
      'virtual_seconds': float(state.clock),
      'real_seconds': self.real_seconds,
      'compile_seconds': self.compile_seconds,
      'messages': messages,
      # Throughput after compilation: the first chunk is left out, so a run
      # that fits in one chunk has no figure (None) rather than a wrong one.
      'messages_per_second': (
        (messages - self.compile_messages)
        / max(
          self.real_seconds - self.compile_seconds - self.resumed_seconds,
          1e-9,
        )
        if messages > self.compile_messages
        else None
      ),
      'byzantine_message_share': float(state.byzantine_messages)
      / max(messages, 1),
      'mean_staleness': float(state.staleness_sum) / max(messages, 1),
      'max_staleness': int(state.staleness_max),
      'ticks': int(state.ticks),
      'mean_tick_fill': messages / max(int(state.ticks), 1),
    }


def evaluation_points(num_messages: int, eval_every: int) -> list[int]:
  """Message counts at which to evaluate.

  Ten times as often during the first ``eval_every`` messages, where the
  accuracy moves fastest and times to a target accuracy are read, then every
  ``eval_every``, and at the end.
  """
  early = max(eval_every // 10, 1)
  points = list(range(early, min(eval_every, num_messages), early))
  points += list(range(eval_every, num_messages, eval_every))
  return points + [num_messages]


def simulate(
  workers: engine.Workers,
  num_messages: int,
  evaluate: Callable[[jax.Array], float],
  eval_every: int = 500,
  progress: Callable[[dict], None] | None = None,
  state: engine.SimState | None = None,
  curve: list[dict] | None = None,
  on_chunk: Callable[[engine.SimState, list[dict]], None] | None = None,
) -> SimulationResult:
  """Runs an asynchronous simulation for ``num_messages`` messages.

  Args:
    workers: from :func:`build_workers`.
    num_messages: total number of messages to apply.
    evaluate: ``evaluate(flat_params) -> accuracy``.
    eval_every: messages between evaluations.
    progress: called with each new curve point.
    state: a state to continue from (for example a restored checkpoint);
      a fresh one by default.
    curve: the curve recorded so far, continued in place with ``state``.
    on_chunk: called with the state and curve after each evaluation, for
      example to checkpoint.

  Returns:
    A :class:`SimulationResult`.

  Raises:
    ValueError: if ``num_messages`` or ``eval_every`` is not positive.
  """
  for name, value in (
    ('num_messages', num_messages),
    ('eval_every', eval_every),
  ):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f'`{name}` must be a positive integer, got {value!r}.')
  if workers.method.synchronous:
    raise ValueError(
      f'{workers.method.name!r} is synchronous; run it with '
      '`simulate_rounds`.'
    )
  curve = [] if curve is None else curve
  elapsed = curve[-1]['real_time'] if curve else 0.0
  start = time.perf_counter() - elapsed
  if state is None:
    state = engine.init_state(workers)
  run = engine.make_runner(workers)
  params_of = jax.jit(lambda s: workers.method.params(s.server))
  compile_seconds = 0.0
  compile_messages = done = int(state.version)
  for target in evaluation_points(num_messages, eval_every):
    if target <= done:
      continue
    chunk_start = time.perf_counter()
    state = run(state, jnp.int32(target))
    version = int(state.version)  # waits for the device
    if compile_seconds == 0.0:
      compile_seconds = time.perf_counter() - chunk_start
      compile_messages = version
    point = {
      'messages': version,
      'virtual_time': float(state.clock),
      'real_time': time.perf_counter() - start,
      'accuracy': float(evaluate(params_of(state))),
    }
    curve.append(point)
    if progress is not None:
      progress(point)
    if on_chunk is not None:
      on_chunk(state, curve)
    if version < target:  # every worker is silent or gone
      break
  return SimulationResult(
    state,
    curve,
    time.perf_counter() - start,
    compile_seconds,
    compile_messages,
    elapsed,
  )
