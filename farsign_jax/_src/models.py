"""Small MNIST classifiers and a flat-parameter view of them.

Optimisers in this package work on one flat ``float32`` parameter vector.
:func:`flat_model` wraps a Flax module into a :class:`FlatModel` whose
``logits``, ``loss`` and ``accuracy`` take that vector directly; all of them
are pure functions that can be ``jit``-ed and ``vmap``-ed (e.g. over many
parameter vectors or workers).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

MODELS = ('logreg', 'mlp')
"""Names accepted by :func:`make_model`."""


def _flatten(x: jax.Array) -> jax.Array:
  """Flattens all but the leading (batch) axis."""
  return x.reshape((x.shape[0], -1))


class LogisticRegression(nn.Module):
  """Multinomial logistic regression: one dense layer on flattened input.

  Weights and biases start at zero, so the initial prediction is uniform and
  the initial cross-entropy is exactly ``log(num_classes)``.

  Attributes:
    num_classes: Number of output classes.
  """

  num_classes: int = 10

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps a batch ``[n, ...]`` to logits ``[n, num_classes]``."""
    return nn.Dense(
      self.num_classes,
      kernel_init=nn.initializers.zeros_init(),
      bias_init=nn.initializers.zeros_init(),
    )(_flatten(x))


class MLP(nn.Module):
  """Multi-layer perceptron with ReLU hidden layers.

  Hidden layers use He-normal weights (variance ``2 / fan_in``, which keeps
  activations at a stable scale through ReLUs) and zero biases; the output
  layer uses LeCun-normal weights (variance ``1 / fan_in``). On MNIST pixels
  in ``[0, 1]`` this gives small initial logits and an initial loss close to
  ``log(10)``.

  Attributes:
    hidden: Widths of the hidden layers.
    num_classes: Number of output classes.
  """

  hidden: Sequence[int] = (128,)
  num_classes: int = 10

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps a batch ``[n, ...]`` to logits ``[n, num_classes]``."""
    x = _flatten(x)
    for width in self.hidden:
      x = nn.relu(nn.Dense(width, kernel_init=nn.initializers.he_normal())(x))
    return nn.Dense(
      self.num_classes, kernel_init=nn.initializers.lecun_normal()
    )(x)


def _check_positive_int(name: str, value: Any) -> int:
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise ValueError(f'`{name}` must be a positive int, got {value!r}.')
  return value


def make_model(name: str, **kwargs: Any) -> nn.Module:
  """Builds a model by name.

  Args:
    name: One of ``MODELS``: ``'logreg'`` (:class:`LogisticRegression`) or
      ``'mlp'`` (:class:`MLP`).
    **kwargs: Fields of the chosen module: ``num_classes`` for both, and
      ``hidden`` (a sequence of positive widths) for ``'mlp'``.

  Returns:
    The Flax module.

  Raises:
    ValueError: If ``name`` is unknown or a field has an invalid value.
    TypeError: If a keyword argument is not a field of the chosen model.

  Example:
    >>> model = make_model('mlp', hidden=(256, 128))
    >>> model.hidden
    (256, 128)
  """
  allowed = {'logreg': ('num_classes',), 'mlp': ('hidden', 'num_classes')}
  if name not in allowed:
    raise ValueError(f'`name` must be one of {MODELS}, got {name!r}.')
  unknown = sorted(set(kwargs) - set(allowed[name]))
  if unknown:
    raise TypeError(
      f'Unexpected keyword arguments {unknown} for model {name!r}; '
      f'accepted: {list(allowed[name])}.'
    )
  if 'num_classes' in kwargs:
    _check_positive_int('num_classes', kwargs['num_classes'])
  if name == 'logreg':
    return LogisticRegression(**kwargs)
  if 'hidden' in kwargs:
    hidden = kwargs['hidden']
    if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
      raise ValueError(
        f'`hidden` must be a sequence of positive ints, got {hidden!r}.'
      )
    for width in hidden:
      if not isinstance(width, int) or isinstance(width, bool) or width < 1:
        raise ValueError(
          f'`hidden` must be a sequence of positive ints, got {hidden!r}.'
        )
    kwargs['hidden'] = tuple(hidden)
  return MLP(**kwargs)


class FlatModel(NamedTuple):
  """A model seen as functions of one flat parameter vector.

  Attributes:
    init_params: ``float32`` vector ``[num_params]`` of initial parameters.
    unravel: Maps a flat vector back to the Flax ``params`` pytree.
    num_params: Number of parameters.
    logits: ``logits(flat_params, images) -> [n, num_classes]`` where
      ``images`` is a float batch ``[n, input_dim]``.
    loss: ``loss(flat_params, images, labels) -> scalar``, the mean softmax
      cross-entropy against integer ``labels`` ``[n]``.
    accuracy: ``accuracy(flat_params, images, labels) -> scalar``, the
      fraction of examples whose arg-max logit equals the label.
    module: The wrapped Flax module.
  """

  init_params: jax.Array
  unravel: Callable[[jax.Array], Any]
  num_params: int
  logits: Callable[[jax.Array, jax.Array], jax.Array]
  loss: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
  accuracy: Callable[[jax.Array, jax.Array, jax.Array], jax.Array]
  module: nn.Module


def flat_model(
  module: nn.Module, key: jax.Array, input_dim: int = 784
) -> FlatModel:
  """Initialises ``module`` and wraps it around a flat parameter vector.

  Args:
    module: A Flax module mapping ``[n, input_dim]`` to logits, e.g. from
      :func:`make_model`.
    key: JAX PRNG key for the initialisation.
    input_dim: Number of input features (784 for flattened MNIST).

  Returns:
    A :class:`FlatModel`.

  Raises:
    ValueError: If ``input_dim`` is not a positive int.

  Example:
    >>> import jax, jax.numpy as jnp
    >>> fm = flat_model(make_model('logreg'), jax.random.key(0))
    >>> fm.num_params
    7850
    >>> x, y = jnp.zeros((4, 784)), jnp.array([0, 1, 2, 3])
    >>> float(fm.loss(fm.init_params, x, y))  # log(10)
    2.302585...
  """
  _check_positive_int('input_dim', input_dim)
  variables = module.init(key, jnp.zeros((1, input_dim), jnp.float32))
  flat, unravel_fn = ravel_pytree(variables['params'])
  flat = flat.astype(jnp.float32)

  def logits(flat_params: jax.Array, images: jax.Array) -> jax.Array:
    return module.apply({'params': unravel_fn(flat_params)}, images)

  def loss(
    flat_params: jax.Array, images: jax.Array, labels: jax.Array
  ) -> jax.Array:
    out = logits(flat_params, images)
    return optax.softmax_cross_entropy_with_integer_labels(out, labels).mean()

  def accuracy(
    flat_params: jax.Array, images: jax.Array, labels: jax.Array
  ) -> jax.Array:
    pred = jnp.argmax(logits(flat_params, images), axis=-1)
    return jnp.mean((pred == labels).astype(jnp.float32))

  return FlatModel(
    init_params=flat,
    unravel=unravel_fn,
    num_params=int(flat.size),
    logits=logits,
    loss=loss,
    accuracy=accuracy,
    module=module,
  )


__all__ = [
  'MODELS',
  'MLP',
  'FlatModel',
  'LogisticRegression',
  'flat_model',
  'make_model',
]
