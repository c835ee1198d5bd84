"""Robust aggregation rules, and their breakdown conditions.

Each rule is a pure ``jnp`` function ``aggregate(messages [n, m], valid [n])
-> [m]`` that ignores invalid rows and rows with a non-finite entry, so it
can be jitted and vmapped. :func:`make_aggregator` binds a rule to the
number of rows ``n`` and of adversarial rows ``f`` it must tolerate, and
refuses a pair outside the rule's breakdown condition:

=====================  ===================  =============================
rule                   condition            reference
=====================  ===================  =============================
``mean``               none (breaks at 1)   --
``median``             ``2 f < n``          Yin et al. 2018
``trimmed_mean``       ``2 f < n``          Yin et al. 2018
``krum``               ``n > 2 f + 2``      Blanchard et al. 2017
``multi_krum``         ``n > 2 f + 2``      Blanchard et al. 2017
``geometric_median``   ``2 f < n``          Pillutla et al. 2022
``centered_clipping``  ``2 f < n``          Karimireddy et al. 2021
``sign_vote``          ``2 f < n``          Bernstein et al. 2019
=====================  ===================  =============================
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax

from farsign_jax._src.aggregators.clipping import centered_clipping
from farsign_jax._src.aggregators.coordinate import (
  coordinate_median,
  mean,
  trimmed_mean,
  usable_rows,
)
from farsign_jax._src.aggregators.geometric_median import (
  geometric_median,
  weighted_coordinate_median,
)
from farsign_jax._src.aggregators.krum import krum, krum_scores, multi_krum
from farsign_jax._src.aggregators.sign_vote import majority_vote

# aggregate(messages [n, m], valid [n], center [m] | None) -> [m]
Aggregate = Callable[..., jax.Array]


def _majority(n: int, f: int) -> bool:
  return 2 * f < n


def _krum_condition(n: int, f: int) -> bool:
  return n > 2 * f + 2


# name -> (breakdown condition, its text)
BREAKDOWN = {
  'mean': (lambda n, f: True, 'none: a single adversary breaks it'),
  'median': (_majority, '2 f < n'),
  'trimmed_mean': (_majority, '2 f < n'),
  'krum': (_krum_condition, 'n > 2 f + 2'),
  'multi_krum': (_krum_condition, 'n > 2 f + 2'),
  'geometric_median': (_majority, '2 f < n'),
  'centered_clipping': (_majority, '2 f < n'),
  'sign_vote': (_majority, '2 f < n'),
}
AGGREGATORS = tuple(BREAKDOWN)


def check_breakdown(name: str, num_rows: int, num_byzantine: int) -> None:
  """Raises if ``f`` adversarial rows among ``n`` break rule ``name``.

  Args:
    name: a rule of :data:`AGGREGATORS`.
    num_rows: ``n``, rows per aggregation.
    num_byzantine: ``f``, adversarial rows to tolerate.

  Raises:
    ValueError: for an unknown rule, bad counts, or a pair that violates the
      rule's breakdown condition.
  """
  if name not in BREAKDOWN:
    raise ValueError(
      f'Unknown aggregator `aggregator={name!r}`; known: '
      f'{", ".join(AGGREGATORS)}.'
    )
  if isinstance(num_rows, bool) or not isinstance(num_rows, int):
    raise ValueError(f'`num_rows` must be an integer, got {num_rows!r}.')
  if num_rows < 1:
    raise ValueError(f'`num_rows` must be positive, got {num_rows!r}.')
  if (
    isinstance(num_byzantine, bool)
    or not isinstance(num_byzantine, int)
    or not 0 <= num_byzantine <= num_rows
  ):
    raise ValueError(
      f'`num_byzantine` must be an integer in [0, num_rows={num_rows}], '
      f'got {num_byzantine!r}.'
    )
  condition, text = BREAKDOWN[name]
  if not condition(num_rows, num_byzantine):
    raise ValueError(
      f'`num_byzantine={num_byzantine}` adversarial rows among '
      f'`num_rows={num_rows}` break {name!r}, which needs {text}.'
    )


def make_aggregator(
  name: str, num_rows: int, num_byzantine: int, **options
) -> Aggregate:
  """Rule ``name`` bound to ``n`` rows of which ``f`` may be adversarial.

  Args:
    name: a rule of :data:`AGGREGATORS`.
    num_rows: ``n``, rows per aggregation.
    num_byzantine: ``f``, adversarial rows to tolerate.
    **options: rule options: ``num_trimmed`` (trimmed mean, default ``f``),
      ``num_selected`` (Multi-Krum, default ``n - f``), ``tolerance`` and
      ``max_iterations`` (geometric median), ``radius`` and ``iterations``
      (centered clipping).

  Returns:
    ``aggregate(messages, valid, center=None) -> [m]``; ``center`` is the
    starting point of centered clipping and ignored by the other rules.

  Raises:
    ValueError: see :func:`check_breakdown`, and for unknown options.

  Example:
    >>> import jax.numpy as jnp
    >>> median = make_aggregator('median', num_rows=5, num_byzantine=2)
    >>> median(jnp.arange(10.0).reshape(5, 2), jnp.ones(5, bool))
    Array([4., 5.], dtype=float32)
  """
  check_breakdown(name, num_rows, num_byzantine)
  f = num_byzantine
  rules = {
    'mean': (mean, {}),
    'median': (coordinate_median, {}),
    'trimmed_mean': (trimmed_mean, {'num_trimmed': f}),
    'krum': (krum, {'num_byzantine': f}),
    'multi_krum': (
      multi_krum, {'num_byzantine': f, 'num_selected': num_rows - f}
    ),
    'geometric_median': (geometric_median, {}),
    'centered_clipping': (centered_clipping, {}),
    'sign_vote': (majority_vote, {}),
  }
  rule, defaults = rules[name]
  allowed = {
    'trimmed_mean': {'num_trimmed'},
    'multi_krum': {'num_selected'},
    'geometric_median': {'tolerance', 'max_iterations'},
    'centered_clipping': {'radius', 'iterations'},
  }.get(name, set())
  unknown = set(options) - allowed
  if unknown:
    raise ValueError(
      f'Unknown options {sorted(unknown)} for aggregator {name!r}; it takes '
      f'{sorted(allowed) or "none"}.'
    )
  bound = functools.partial(rule, **(defaults | options))

  def aggregate(messages, valid, center=None):
    if name == 'centered_clipping':
      return bound(messages, valid, center)
    return bound(messages, valid)

  return aggregate


__all__ = [
  'AGGREGATORS',
  'BREAKDOWN',
  'centered_clipping',
  'check_breakdown',
  'coordinate_median',
  'geometric_median',
  'krum',
  'krum_scores',
  'majority_vote',
  'make_aggregator',
  'mean',
  'multi_krum',
  'trimmed_mean',
  'usable_rows',
  'weighted_coordinate_median',
]
