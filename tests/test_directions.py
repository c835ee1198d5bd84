"""Tests of the direction designs and the worker oracles."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import farsign_jax as fs

RANDOM = ['coordinate_subset', 'gaussian', 'rademacher', 'orthogonal']


@pytest.mark.parametrize('name', RANDOM)
def test_directions_are_reproducible_from_key_and_id(name):
  design = fs.make_directions(name, dim=12, num_directions=4)
  base = jax.random.key(5)
  first = design.directions(design.message_key(base, 42))
  again = design.directions(design.message_key(base, 42))
  other = design.directions(design.message_key(base, 43))
  np.testing.assert_array_equal(first, again)
  assert not np.allclose(first, other)


@pytest.mark.parametrize('name', RANDOM)
def test_unit_norm_and_isotropic_second_moment(name):
  # E[u u^T] = I / d for one unit direction of every random design. Over
  # 3 000 messages of k = 4 directions in d = 8 the entries of the empirical
  # second moment have a standard error below 0.003; the tolerance 0.015 is
  # five of them.
  d, k, draws = 8, 4, 3000
  design = fs.make_directions(name, dim=d, num_directions=k)
  keys = jax.vmap(design.message_key, (None, 0))(
    jax.random.key(0), jnp.arange(draws)
  )
  u = jax.vmap(design.directions)(keys).reshape(-1, d)
  np.testing.assert_allclose(jnp.linalg.norm(u, axis=1), 1.0, atol=1e-5)
  moment = u.T @ u / u.shape[0]
  np.testing.assert_allclose(moment, jnp.eye(d) / d, atol=0.015)


def test_orthogonal_directions_are_orthonormal():
  design = fs.make_directions('orthogonal', dim=20, num_directions=6)
  u = design.directions(jax.random.key(1))
  np.testing.assert_allclose(u @ u.T, jnp.eye(6), atol=1e-5)


@pytest.mark.parametrize('name', RANDOM + ['coordinate'])
def test_project_and_expand_are_adjoint(name):
  k = None if name == 'coordinate' else 5
  design = fs.make_directions(name, dim=9, num_directions=k)
  key = jax.random.key(2)
  v = jax.random.normal(jax.random.key(3), (9,))
  c = jax.random.normal(jax.random.key(4), (design.num_directions,))
  # <P v, c> = <v, E c> for the linear maps P (project) and E (expand).
  lhs = jnp.dot(design.project(key, v), c)
  rhs = jnp.dot(v, design.expand(key, c))
  np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


def test_bad_design_arguments():
  with pytest.raises(ValueError, match='known designs'):
    fs.make_directions('spiral', dim=3, num_directions=1)
  with pytest.raises(ValueError, match='num_directions'):
    fs.make_directions('gaussian', dim=3, num_directions=4)
  with pytest.raises(ValueError, match='num_directions'):
    fs.make_directions('gaussian', dim=3)
  with pytest.raises(ValueError, match='coordinate'):
    fs.make_directions('coordinate', dim=3, num_directions=2)


def _cubic(x):
  return 0.5 * jnp.sum(x**2) + jnp.sum(x**3) / 3.0


@pytest.mark.parametrize('name', ['coordinate', 'gaussian', 'orthogonal'])
def test_first_order_oracle_projects_the_gradient(name):
  k = None if name == 'coordinate' else 3
  design = fs.make_directions(name, dim=6, num_directions=k)
  x = jnp.linspace(-1.0, 1.0, 6)
  key = jax.random.key(9)
  measured = fs.make_oracle('first_order', design)(_cubic, x, key)
  expected = design.project(key, jax.grad(_cubic)(x))
  np.testing.assert_allclose(measured, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', ['coordinate', 'gaussian', 'rademacher'])
def test_zeroth_order_matches_derivative_of_a_quadratic(name):
  # For a quadratic the central difference is exact; only float32 rounding
  # remains, about eps * |f| / mu = 1.2e-7 * 10 / 1e-2 ~ 1e-4.
  k = None if name == 'coordinate' else 3
  design = fs.make_directions(name, dim=6, num_directions=k)
  a = jnp.diag(jnp.arange(1.0, 7.0))
  quadratic = lambda x: 0.5 * x @ a @ x + jnp.sum(x)
  x = jnp.linspace(-1.0, 1.0, 6)
  key = jax.random.key(4)
  measured = fs.make_oracle('zeroth_order', design, smoothing=1e-2)(
    quadratic, x, key
  )
  exact = design.project(key, jax.grad(quadratic)(x))
  np.testing.assert_allclose(measured, exact, atol=1e-3)


def test_zeroth_order_error_is_second_order_in_mu():
  # For the cubic, the central difference along a unit u errs by exactly
  # mu^2 / 6 * sum_i 2 u_i^3 (the third derivative of x^3/3 is 2), so the
  # error at mu must be close to that value: the O(mu^2) term, pinned.
  design = fs.make_directions('gaussian', dim=6, num_directions=3)
  x = jnp.linspace(-1.0, 1.0, 6)
  key = jax.random.key(8)
  u = design.directions(key)
  exact = design.project(key, jax.grad(_cubic)(x))
  for mu in (0.2, 0.1):
    measured = fs.make_oracle('zeroth_order', design, smoothing=mu)(
      _cubic, x, key
    )
    predicted = mu**2 / 6.0 * jnp.sum(2.0 * u**3, axis=1)
    # float32 rounding: eps * |f| / mu <= 1.2e-7 * 5 / 0.1 ~ 6e-6.
    np.testing.assert_allclose(measured - exact, predicted, atol=2e-5)


def test_unknown_oracle_and_bad_smoothing():
  design = fs.make_directions('coordinate', dim=2)
  with pytest.raises(ValueError, match='known oracles'):
    fs.make_oracle('second_order', design)
  with pytest.raises(ValueError, match='smoothing'):
    fs.make_oracle('zeroth_order', design, smoothing=0.0)
