"""Flax models for MNIST, seen as functions of one flat parameter vector."""

from farsign_jax._src.models import MLP as MLP
from farsign_jax._src.models import MODELS as MODELS
from farsign_jax._src.models import FlatModel as FlatModel
from farsign_jax._src.models import LogisticRegression as LogisticRegression
from farsign_jax._src.models import flat_model as flat_model
from farsign_jax._src.models import make_model as make_model

__all__ = (
  'MLP',
  'MODELS',
  'FlatModel',
  'LogisticRegression',
  'flat_model',
  'make_model',
)
