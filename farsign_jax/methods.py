"""FAR-SIGN and the baselines as simulator methods, by name or by builder."""

from farsign_jax._src.methods.async_sgd import (
  async_sgd_method as async_sgd_method,
)
from farsign_jax._src.methods.base import Method as Method
from farsign_jax._src.methods.basgd import basgd_method as basgd_method
from farsign_jax._src.methods.far_sign import far_sign_method as far_sign_method
from farsign_jax._src.methods.kardam import kardam_method as kardam_method
from farsign_jax._src.methods.registry import METHODS as METHODS
from farsign_jax._src.methods.registry import MethodSettings as MethodSettings
from farsign_jax._src.methods.registry import MethodSpec as MethodSpec
from farsign_jax._src.methods.registry import make_method as make_method
from farsign_jax._src.methods.registry import register_method as register_method
from farsign_jax._src.methods.synchronous import (
  synchronous_method as synchronous_method,
)
from farsign_jax._src.methods.weighted_robust import (
  weighted_robust_method as weighted_robust_method,
)
from farsign_jax._src.methods.zeno import zeno_method as zeno_method

__all__ = (
  'async_sgd_method',
  'basgd_method',
  'far_sign_method',
  'kardam_method',
  'make_method',
  'Method',
  'METHODS',
  'MethodSettings',
  'MethodSpec',
  'register_method',
  'synchronous_method',
  'weighted_robust_method',
  'zeno_method',
)
