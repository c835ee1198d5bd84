"""Adversaries: what Byzantine workers send instead of honest messages.

One interface serves FAR-SIGN's ``k`` scalar measurements and the baselines'
``d``-dimensional gradients alike: an attack sees the honest messages that
every worker of a tick *would* have sent (``[B, m]``), which rows belong to
adversarial workers, which rows are real arrivals, and one PRNG key per row
derived from the message id; it returns the messages actually sent. Rows of
honest workers must come back unchanged. Attacks that read the honest
messages of the same tick (*omniscient* attacks) use only rows that are both
honest and valid.

Some attacks change what the adversary computes rather than what it sends:
``label_flip`` runs the honest rule on poisoned labels, ``stale_replay``
replays the honest computation at the initial parameters, and ``silence`` is
a worker that crashed and never sends.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

# corrupt(honest [B, m], byzantine [B], valid [B], keys [B]) -> [B, m]
Corrupt = Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]


@dataclasses.dataclass(frozen=True)
class Attack:
  """An adversary.

  Attributes:
    name: the attack's name.
    corrupt: ``corrupt(honest, byzantine, valid, keys) -> messages``.
    flips_labels: adversaries compute on labels ``9 - y``.
    replays_initial: adversaries compute at the initial parameters.
    silent: adversaries never send a message.
    omniscient: ``corrupt`` reads the honest messages of the tick.
  """

  name: str
  corrupt: Corrupt
  flips_labels: bool = False
  replays_initial: bool = False
  silent: bool = False
  omniscient: bool = False


def _replace(fn):
  """An attack whose adversarial row depends on its own row and key only."""

  def corrupt(honest, byzantine, valid, keys):
    del valid
    bad = jax.vmap(fn)(honest, keys)
    return jnp.where(byzantine[:, None], bad.astype(honest.dtype), honest)

  return corrupt


def _identity(honest, byzantine, valid, keys):
  del byzantine, valid, keys
  return honest


def _honest_moments(honest, byzantine, valid):
  """Mean and standard deviation of the honest, valid rows of a tick."""
  weight = (valid & ~byzantine).astype(honest.dtype)[:, None]
  count = jnp.maximum(weight.sum(), 1.0)
  safe = jnp.where(weight > 0, honest, 0.0)
  mean = safe.sum(0) / count
  var = (weight * (safe - mean) ** 2).sum(0) / count
  return mean, jnp.sqrt(var)


def _check_number(name, value, low=None, allow_low=False):
  """Raises unless ``value`` is a finite real number above ``low``."""
  try:
    ok = not isinstance(value, bool) and math.isfinite(value)
  except TypeError:
    ok = False
  if ok and low is not None:
    ok = value >= low if allow_low else value > low
  if not ok:
    bound = '' if low is None else f' {">=" if allow_low else ">"} {low}'
    raise ValueError(
      f'`{name}` must be a finite number{bound}, got {value!r}.'
    )


def no_attack() -> Attack:
  """Every worker is honest in behaviour (adversaries send honest messages)."""
  return Attack('none', _identity)


def sign_flip(scale: float = 10.0) -> Attack:
  """Sends ``-scale * y`` instead of the honest message ``y``.

  Raises:
    ValueError: unless ``scale`` is a positive finite number.
  """
  _check_number('scale', scale, low=0)
  return Attack('sign_flip', _replace(lambda y, key: -scale * y))


def gaussian(std: float = 100.0) -> Attack:
  """Sends pure Gaussian noise ``N(0, std^2)`` in every entry.

  Raises:
    ValueError: unless ``std`` is a non-negative finite number.
  """
  _check_number('std', std, low=0, allow_low=True)
  return Attack(
    'gaussian',
    _replace(lambda y, key: std * jax.random.normal(key, y.shape, y.dtype)),
  )


def constant(value: float = 100.0) -> Attack:
  """Sends ``value`` in every entry (finite; see :func:`nan`, :func:`inf`).

  Raises:
    ValueError: unless ``value`` is a finite number.
  """
  _check_number('value', value)
  return Attack('constant', _replace(lambda y, key: jnp.full_like(y, value)))


def nan() -> Attack:
  """Sends NaN in every entry."""
  return Attack('nan', _replace(lambda y, key: jnp.full_like(y, jnp.nan)))


def inf() -> Attack:
  """Sends ``±inf`` in every entry, the sign drawn at random per entry."""

  def bad(y, key):
    return jnp.where(jax.random.bernoulli(key, 0.5, y.shape), jnp.inf, -jnp.inf)

  return Attack('inf', _replace(bad))


def silence() -> Attack:
  """Adversaries crash: they never send a message."""
  return Attack('silence', _identity, silent=True)


def label_flip() -> Attack:
  """Adversaries run the honest rule on labels ``9 - y``."""
  return Attack('label_flip', _identity, flips_labels=True)


def stale_replay() -> Attack:
  """Adversaries keep sending the honest computation at the initial point."""
  return Attack('stale_replay', _identity, replays_initial=True)


def little_is_enough(z: float | None = None, num_workers: int = 100,
                     num_byzantine: int = 20) -> Attack:
  """"A little is enough": ``mean - z * std`` of the tick's honest messages.

  Args:
    z: how many standard deviations to shift; by default the value from the
      original analysis, the ``(n - s) / n`` quantile of the standard normal
      with ``s = floor(n / 2 + 1) - f`` for ``n`` workers, ``f`` adversarial.
    num_workers: ``n``, used for the default ``z``.
    num_byzantine: ``f``, used for the default ``z``.

  Raises:
    ValueError: for a non-finite ``z``, a non-positive ``num_workers`` or a
      ``num_byzantine`` outside ``[0, num_workers]``.
  """
  if isinstance(num_workers, bool) or not isinstance(num_workers, int) or (
    num_workers < 1
  ):
    raise ValueError(
      f'`num_workers` must be a positive integer, got {num_workers!r}.'
    )
  if isinstance(num_byzantine, bool) or not isinstance(num_byzantine, int) or (
    not 0 <= num_byzantine <= num_workers
  ):
    raise ValueError(
      f'`num_byzantine` must be an integer in [0, num_workers={num_workers}],'
      f' got {num_byzantine!r}.'
    )
  if z is not None:
    _check_number('z', z)
  if z is None:
    s = num_workers // 2 + 1 - num_byzantine
    quantile = (num_workers - s) / num_workers
    z = float(jax.scipy.special.ndtri(jnp.clip(quantile, 1e-6, 1 - 1e-6)))

  def corrupt(honest, byzantine, valid, keys):
    del keys
    mean, std = _honest_moments(honest, byzantine, valid)
    return jnp.where(byzantine[:, None], mean - z * std, honest)

  return Attack('alie', corrupt, omniscient=True)


def inner_product_manipulation(epsilon: float = 0.1) -> Attack:
  """Sends ``-epsilon`` times the mean of the tick's honest messages.

  Raises:
    ValueError: unless ``epsilon`` is a positive finite number.
  """
  _check_number('epsilon', epsilon, low=0)

  def corrupt(honest, byzantine, valid, keys):
    del keys
    mean, _ = _honest_moments(honest, byzantine, valid)
    return jnp.where(byzantine[:, None], -epsilon * mean, honest)

  return Attack('ipm', corrupt, omniscient=True)


def mimic() -> Attack:
  """Adversaries copy the first honest valid message of the tick."""

  def corrupt(honest, byzantine, valid, keys):
    del keys
    source = jnp.argmax(valid & ~byzantine)
    return jnp.where(byzantine[:, None], honest[source], honest)

  return Attack('mimic', corrupt, omniscient=True)


ATTACKS = {
  'none': no_attack,
  'sign_flip': sign_flip,
  'gaussian': gaussian,
  'constant': constant,
  'nan': nan,
  'inf': inf,
  'silence': silence,
  'label_flip': label_flip,
  'stale_replay': stale_replay,
  'alie': little_is_enough,
  'ipm': inner_product_manipulation,
  'mimic': mimic,
}


def make_attack(name: str, **kwargs) -> Attack:
  """Builds a named attack, passing ``kwargs`` to its constructor.

  Raises:
    ValueError: for an unknown name.
  """
  if name not in ATTACKS:
    raise ValueError(
      f'Unknown attack `attack={name!r}`; known attacks: '
      f'{", ".join(ATTACKS)}.'
    )
  return ATTACKS[name](**kwargs)
