"""Argument types for the command-line entry points.

Each type turns a flag's text into a number and refuses, with a message that
echoes the value, anything outside its range; argparse then stops with a
usage error (exit status 2) that names the flag.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from farsign_jax._src.simulator.config import MAX_SEED


def number_type(
  convert: Callable[[str], float], accept: Callable[[float], bool],
  expected: str,
) -> Callable[[str], float]:
  """An argparse type: ``convert`` the text, then require ``accept``."""

  def parse(text: str):
    try:
      value = convert(text)
    except ValueError:
      raise argparse.ArgumentTypeError(
        f'expected {expected}, got {text!r}'
      ) from None
    if not accept(value):
      raise argparse.ArgumentTypeError(f'expected {expected}, got {text}')
    return value

  parse.__name__ = expected
  return parse


positive_int = number_type(int, lambda v: v >= 1, 'a positive integer')
seed = number_type(
  int, lambda v: 0 <= v <= MAX_SEED, 'an integer seed in [0, 2**32 - 1]'
)
positive_float = number_type(
  float, lambda v: 0 < v < math.inf, 'a positive finite number'
)
non_negative_float = number_type(
  float, lambda v: 0 <= v < math.inf, 'a non-negative finite number'
)
fraction = number_type(float, lambda v: 0 <= v < 1, 'a number in [0, 1)')
finite_float = number_type(float, math.isfinite, 'a finite number')
