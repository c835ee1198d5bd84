"""Robust aggregation rules of the baselines, with breakdown conditions."""

from farsign_jax._src.aggregators import AGGREGATORS as AGGREGATORS
from farsign_jax._src.aggregators import BREAKDOWN as BREAKDOWN
from farsign_jax._src.aggregators import check_breakdown as check_breakdown
from farsign_jax._src.aggregators import make_aggregator as make_aggregator
from farsign_jax._src.aggregators.clipping import (
  centered_clipping as centered_clipping,
)
from farsign_jax._src.aggregators.coordinate import (
  coordinate_median as coordinate_median,
)
from farsign_jax._src.aggregators.coordinate import mean as mean
from farsign_jax._src.aggregators.coordinate import trimmed_mean as trimmed_mean
from farsign_jax._src.aggregators.geometric_median import (
  geometric_median as geometric_median,
)
from farsign_jax._src.aggregators.krum import krum as krum
from farsign_jax._src.aggregators.krum import multi_krum as multi_krum
from farsign_jax._src.aggregators.sign_vote import (
  majority_vote as majority_vote,
)

__all__ = (
  'AGGREGATORS',
  'BREAKDOWN',
  'centered_clipping',
  'check_breakdown',
  'coordinate_median',
  'geometric_median',
  'krum',
  'majority_vote',
  'make_aggregator',
  'mean',
  'multi_krum',
  'trimmed_mean',
)
