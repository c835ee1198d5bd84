"""The one kind of object that every training method is.

FAR-SIGN and every baseline are a :class:`Method`: what an honest worker
computes from its (stale) parameters and minibatch, how the server
initialises its state, how it applies one arriving message (asynchronous
methods) or one round of messages (synchronous methods), and whether it waits
for rounds. The simulator runs any method; experiments only choose which.

Parameters are flat vectors of ``d`` numbers and messages flat vectors of
``message_size`` numbers, so attacks act on FAR-SIGN's ``k`` scalars and on a
baseline's ``d``-dimensional gradient through one interface.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

# loss(flat_params) -> scalar, with the worker's minibatch closed over.
Loss = Callable[[jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Method:
  """A training method the simulator can run.

  Attributes:
    name: short name used on the command line and in tables.
    message_size: length of one message.
    init: ``init(flat_params) -> server_state``.
    params: ``params(server_state) -> flat_params``, what a worker reads.
    message: ``message(loss, flat_params, message_id) -> [message_size]``,
      the honest worker's computation. ``message_id`` is the message's
      arrival index, from which per-message randomness is derived.
    apply: for asynchronous methods, ``apply(state, message, message_id,
      staleness) -> state`` applies one arriving message. ``None`` for
      synchronous methods.
    apply_round: for synchronous methods, ``apply_round(state, messages
      [n, message_size], valid [n]) -> state`` aggregates one round; rows
      with ``valid`` false must be ignored. ``None`` for asynchronous ones.
    quorum: synchronous methods only: the number of arrivals a round waits
      for, or ``None`` for all live workers.
    max_byzantine_fraction: the adversarial fraction of workers above which
      the method's guarantee breaks down (the simulator refuses larger
      fractions), or ``None`` for a method with no defence, which runs under
      any fraction.
    needs_trusted_data: whether the server uses data of its own.
    description: one line for tables and ``--help``.
    uses_worker: asynchronous methods only: ``apply`` takes a fifth
      argument, the id of the worker that sent the message (for methods
      that keep per-worker state or buffers).
  """

  name: str
  message_size: int
  init: Callable[[jax.Array], Any]
  params: Callable[[Any], jax.Array]
  message: Callable[[Loss, jax.Array, jax.Array], jax.Array]
  apply: Callable[[Any, jax.Array, jax.Array, jax.Array], Any] | None = None
  apply_round: Callable[[Any, jax.Array, jax.Array], Any] | None = None
  quorum: int | None = None
  max_byzantine_fraction: float | None = 0.5
  needs_trusted_data: bool = False
  description: str = ''
  uses_worker: bool = False

  def apply_message(self, state, message, message_id, staleness, worker):
    """Calls ``apply``, passing ``worker`` only if the method uses it."""
    if self.uses_worker:
      return self.apply(state, message, message_id, staleness, worker)
    return self.apply(state, message, message_id, staleness)

  @property
  def synchronous(self) -> bool:
    """Whether the method waits for rounds of messages."""
    return self.apply_round is not None

  def __post_init__(self):
    if (self.apply is None) == (self.apply_round is None):
      raise ValueError(
        f'Method {self.name!r} must define exactly one of `apply` '
        '(asynchronous) and `apply_round` (synchronous).'
      )
