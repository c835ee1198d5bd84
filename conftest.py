"""Pytest set-up for the whole repository (tests and doctests)."""

import os

# The offline MNIST copy beside the repository, for runs that do not set
# FARSIGN_DATA_DIR (CI and the README's test command set it).
_SHARED_MNIST = os.path.join(
  os.path.dirname(os.path.abspath(__file__)), '..', 'shared', 'data', 'mnist'
)
if not os.environ.get('FARSIGN_DATA_DIR') and os.path.isdir(_SHARED_MNIST):
  os.environ['FARSIGN_DATA_DIR'] = os.path.normpath(_SHARED_MNIST)
