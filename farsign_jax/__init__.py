"""farsign_jax: FAR-SIGN and its baselines in JAX.

FAR-SIGN (Fully Asynchronous Robust optimization via SIGNed directional
projections) trains from directional derivative estimates that workers send
fully asynchronously, some of them adversarial, with no trusted data at the
server. This package holds the optax-style transformation, the direction
designs and worker oracles, and a simulator of many asynchronous workers.

References:
  Reiffers-Masson, Paul, Thoppe, Talagani, Roy and Ganesh, "Adversary-Robust
  Learning from Fully Asynchronous Directional Derivative Estimates", 2026,
  arXiv:2605.09337.
"""

from farsign_jax._src.attacks import ATTACKS as ATTACKS
from farsign_jax._src.attacks import Attack as Attack
from farsign_jax._src.attacks import make_attack as make_attack
from farsign_jax._src.directions import DESIGNS as DESIGNS
from farsign_jax._src.directions import DirectionDesign as DirectionDesign
from farsign_jax._src.directions import make_directions as make_directions
from farsign_jax._src.far_sign import DirectionalMessage as DirectionalMessage
from farsign_jax._src.far_sign import ScaleByFarSignState as ScaleByFarSignState
from farsign_jax._src.far_sign import far_sign as far_sign
from farsign_jax._src.far_sign import inverse_power_decay as inverse_power_decay
from farsign_jax._src.far_sign import safe_sign as safe_sign
from farsign_jax._src.far_sign import scale_by_far_sign as scale_by_far_sign
from farsign_jax._src.methods.async_sgd import (
  async_sgd_method as async_sgd_method,
)
from farsign_jax._src.methods.base import Method as Method
from farsign_jax._src.methods.far_sign import far_sign_method as far_sign_method
from farsign_jax._src.methods.registry import METHODS as METHODS
from farsign_jax._src.methods.registry import MethodSettings as MethodSettings
from farsign_jax._src.methods.registry import make_method as make_method
from farsign_jax._src.oracles import ORACLES as ORACLES
from farsign_jax._src.oracles import make_oracle as make_oracle

__version__ = '0.1.0'

__all__ = (
  'async_sgd_method',
  'Attack',
  'ATTACKS',
  'DESIGNS',
  'DirectionalMessage',
  'DirectionDesign',
  'far_sign',
  'far_sign_method',
  'inverse_power_decay',
  'make_attack',
  'make_directions',
  'make_method',
  'make_oracle',
  'Method',
  'METHODS',
  'MethodSettings',
  'ORACLES',
  'safe_sign',
  'scale_by_far_sign',
  'ScaleByFarSignState',
)
