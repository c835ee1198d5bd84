"""Robust aggregation rules: hand-computed cases, references, breakdown."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import optimize

from farsign_jax._src import aggregators as agg

RULES = agg.AGGREGATORS


def _random(seed, n=9, m=6):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, m)).astype(np.float32)


def test_hand_computed_coordinate_rules():
  x = jnp.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [100.0, -50.0]])
  valid = jnp.array([True, True, True, True])
  np.testing.assert_allclose(agg.mean(x, valid), [26.5, 2.5])
  np.testing.assert_allclose(agg.coordinate_median(x, valid), [2.5, 15.0])
  np.testing.assert_allclose(agg.trimmed_mean(x, valid, 1), [2.5, 15.0])
  # The last row invalid: three rows left, odd count.
  three = valid.at[3].set(False)
  np.testing.assert_allclose(agg.coordinate_median(x, three), [2.0, 20.0])
  np.testing.assert_allclose(agg.trimmed_mean(x, three, 1), [2.0, 20.0])
  np.testing.assert_allclose(agg.mean(x, three), [2.0, 20.0])
  np.testing.assert_allclose(
    agg.majority_vote(x, valid), [1.0, 1.0]
  )


def test_trimmed_mean_matches_scipy():
  from scipy import stats

  x = _random(1, n=11)
  ours = agg.trimmed_mean(jnp.asarray(x), jnp.ones(11, bool), 2)
  # scipy trims a proportion from each end: 2 of 11.
  expected = stats.trim_mean(x, 2 / 11, axis=0)
  # float32 sums of 7 values: 1e-6 relative is a few ulps.
  np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)


def test_median_matches_numpy_on_valid_rows():
  x = _random(2, n=10)
  valid = np.array([1, 1, 0, 1, 1, 1, 0, 1, 1, 1], bool)
  ours = agg.coordinate_median(jnp.asarray(x), jnp.asarray(valid))
  np.testing.assert_allclose(ours, np.median(x[valid], axis=0), rtol=1e-6)


def _brute_krum_scores(x, f):
  n = len(x)
  scores = []
  for i in range(n):
    d = sorted(
      float(np.sum((x[i] - x[j]) ** 2)) for j in range(n) if j != i
    )
    scores.append(sum(d[: n - f - 2]))
  return np.array(scores)


@pytest.mark.parametrize('seed', range(5))
def test_krum_selection_matches_brute_force(seed):
  x = _random(seed, n=10, m=5)
  x[:2] += 4.0  # two outliers
  scores = _brute_krum_scores(x.astype(np.float64), 2)
  chosen = agg.krum(jnp.asarray(x), jnp.ones(10, bool), 2)
  index = int(np.argmin(np.abs(x - np.asarray(chosen)).sum(1)))
  np.testing.assert_array_equal(np.asarray(chosen), x[index])
  # The Gram form loses a few float32 ulps: the chosen row's exact score is
  # the minimum up to 1e-5 relative.
  assert scores[index] <= scores.min() * (1 + 1e-5)
  ours = agg.krum_scores(jnp.asarray(x), jnp.ones(10, bool), 2)
  np.testing.assert_allclose(ours, scores, rtol=1e-4)


def test_multi_krum_averages_lowest_scores():
  x = _random(7, n=10, m=5)
  scores = _brute_krum_scores(x.astype(np.float64), 2)
  best = np.argsort(scores)[:4]
  ours = agg.multi_krum(jnp.asarray(x), jnp.ones(10, bool), 2, 4)
  np.testing.assert_allclose(ours, x[best].mean(0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('seed', range(3))
def test_geometric_median_matches_scipy(seed):
  x = _random(seed, n=9, m=4).astype(np.float64)
  objective = lambda z: np.linalg.norm(x - z, axis=1).sum()
  reference = optimize.minimize(
    objective, x.mean(0), method='Nelder-Mead',
    options={'xatol': 1e-10, 'fatol': 1e-12, 'maxiter': 20_000},
  )
  ours = np.asarray(
    agg.geometric_median(jnp.asarray(x, jnp.float32), jnp.ones(9, bool)),
    np.float64,
  )
  # Weiszfeld stops at a relative step of 1e-6 in float32; the sum of
  # distances is flat at its minimum, so compare values to 1e-5 relative
  # and points to 1e-3.
  assert objective(ours) <= reference.fun * (1 + 1e-5)
  np.testing.assert_allclose(ours, reference.x, atol=1e-3)


def test_weighted_geometric_median_with_integer_weights_repeats_rows():
  x = _random(4, n=5, m=3)
  weights = jnp.array([3.0, 1.0, 1.0, 2.0, 1.0])
  repeated = np.repeat(x, [3, 1, 1, 2, 1], axis=0)
  ours = agg.geometric_median(jnp.asarray(x), jnp.ones(5, bool), weights)
  plain = agg.geometric_median(jnp.asarray(repeated), jnp.ones(8, bool))
  # Both stop at a relative step of 1e-6; 1e-4 leaves room for the last
  # steps taken on different paths.
  np.testing.assert_allclose(ours, plain, atol=1e-4)


def test_weighted_median_hand_computed():
  x = jnp.array([[1.0], [2.0], [3.0], [4.0]])
  valid = jnp.ones(4, bool)
  out = agg.weighted_coordinate_median(x, valid, jnp.array([1.0, 1, 1, 5]))
  np.testing.assert_allclose(out, [4.0])
  out = agg.weighted_coordinate_median(x, valid, jnp.array([3.0, 1, 1, 1]))
  np.testing.assert_allclose(out, [1.0])


def test_centered_clipping_bounds_an_outlier():
  x = jnp.array([[0.0, 0.0], [0.0, 0.0], [1e6, 0.0]])
  out = agg.centered_clipping(x, jnp.ones(3, bool), radius=1.0, iterations=1)
  # The outlier's offset is clipped to norm 1, then divided by 3 rows.
  np.testing.assert_allclose(out, [1 / 3, 0.0], rtol=1e-6)
  # A small radius never clips honest offsets within it: plain mean.
  y = jnp.array([[0.1, 0.0], [0.0, 0.1], [0.1, 0.1]])
  out = agg.centered_clipping(y, jnp.ones(3, bool), radius=10.0)
  np.testing.assert_allclose(out, y.mean(0), rtol=1e-6)


@pytest.mark.parametrize('name', RULES)
@pytest.mark.parametrize('poison', [np.nan, np.inf, -np.inf])
def test_non_finite_rows_never_reach_the_output(name, poison):
  x = _random(3, n=9)
  x[1, 2] = poison
  x[4] = poison
  aggregate = agg.make_aggregator(name, 9, 2)
  valid = jnp.ones(9, bool)
  out = jax.jit(aggregate)(jnp.asarray(x), valid)
  assert np.all(np.isfinite(out))
  # Same as dropping those rows by hand.
  dropped = valid.at[1].set(False).at[4].set(False)
  clean = jnp.asarray(np.where(np.isfinite(x), x, 0.0))
  np.testing.assert_allclose(out, aggregate(clean, dropped), rtol=1e-6)


@pytest.mark.parametrize('name', RULES)
def test_invalid_rows_are_ignored(name):
  x = _random(5, n=9)
  valid = np.ones(9, bool)
  valid[[0, 8]] = False
  garbage = x.copy()
  garbage[[0, 8]] = 1e4
  aggregate = agg.make_aggregator(name, 9, 2)
  np.testing.assert_allclose(
    aggregate(jnp.asarray(x), jnp.asarray(valid)),
    aggregate(jnp.asarray(garbage), jnp.asarray(valid)),
    rtol=1e-6,
  )


@pytest.mark.parametrize('name', RULES)
def test_no_usable_row_gives_zeros(name):
  out = agg.make_aggregator(name, 5, 1)(jnp.ones((5, 3)), jnp.zeros(5, bool))
  np.testing.assert_array_equal(out, np.zeros(3))


@pytest.mark.parametrize(
  'name, ok, bad',
  [
    ('median', (5, 2), (4, 2)),
    ('trimmed_mean', (5, 2), (4, 2)),
    ('geometric_median', (5, 2), (4, 2)),
    ('centered_clipping', (5, 2), (4, 2)),
    ('sign_vote', (5, 2), (4, 2)),
    ('krum', (7, 2), (6, 2)),
    ('multi_krum', (7, 2), (6, 2)),
  ],
)
def test_breakdown_condition_at_its_boundary(name, ok, bad):
  agg.make_aggregator(name, *ok)
  with pytest.raises(ValueError, match=f'`num_byzantine={bad[1]}`'):
    agg.make_aggregator(name, *bad)


def test_mean_accepts_any_fraction_and_bad_arguments_are_named():
  agg.make_aggregator('mean', 4, 4)
  with pytest.raises(ValueError, match='aggregator=.nope.'):
    agg.make_aggregator('nope', 4, 1)
  with pytest.raises(ValueError, match='num_byzantine'):
    agg.make_aggregator('median', 4, -1)
  with pytest.raises(ValueError, match='Unknown options'):
    agg.make_aggregator('median', 4, 1, radius=2.0)


def test_robust_rules_resist_a_large_finite_minority():
  rng = np.random.default_rng(0)
  honest = rng.normal(1.0, 0.1, size=(7, 4)).astype(np.float32)
  x = np.concatenate([honest, np.full((2, 4), 1e4, np.float32)])
  valid = jnp.ones(9, bool)
  for name in RULES:
    out = np.asarray(agg.make_aggregator(name, 9, 2)(jnp.asarray(x), valid))
    if name == 'mean':
      assert np.all(out > 1000)  # the mean is not robust
    elif name == 'centered_clipping':
      # Two clipped offsets of norm 1 per step, over 9 rows, 3 steps.
      assert np.all(out < 2.0)
    else:
      assert np.all(np.abs(out - 1.0) < 0.5), name
