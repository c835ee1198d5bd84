"""Property tests: no message, however malformed, breaks the server's state.

Hypothesis feeds the FAR-SIGN server step random mixtures of honest and
adversarial messages (NaN, ±inf, ±1e38, subnormals, ordinary numbers) and
checks after every message that

* every leaf of the state stays finite;
* the influence of one message is bounded: with the coordinate design each
  coordinate of the tracker moves by at most ``beta``; with random designs
  ``||delta g|| <= beta * k`` (``k`` unit directions);
* a NaN entry moves nothing along its direction: ``delta g`` is a
  combination ``beta * sum_j c_j u_j`` with ``c_j = 0`` where ``y_j`` is NaN.

The steps are jitted once, outside the properties, so that examples do not
recompile. Example counts are modest (these run on every commit).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import farsign_jax as fs
from farsign_jax._src import aggregators

DIM = 12
K = 4
BETA = 0.05
ALPHA = 0.1
F32 = np.finfo(np.float32)

SPECIAL = [
  np.nan, np.inf, -np.inf, 1e38, -1e38, 3.4e38, F32.smallest_subnormal,
  -F32.smallest_subnormal, 1e-40, 0.0, -0.0,
]
entries = st.one_of(
  st.sampled_from(SPECIAL),
  st.floats(-10.0, 10.0, width=32),
  st.floats(width=32),  # anything, NaN and infinities included
)


def _messages(size):
  return st.lists(
    st.lists(entries, min_size=size, max_size=size), min_size=1, max_size=6
  ).map(lambda rows: np.array(rows, np.float32))


def _assert_finite(tree):
  for leaf in jax.tree.leaves(tree):
    assert np.all(np.isfinite(np.asarray(leaf))), leaf


def _transform(design):
  k = None if design == 'coordinate' else K
  tx = fs.scale_by_far_sign(BETA, design, k, seed=3)
  step = jax.jit(
    lambda values, message_id, state: tx.update(
      fs.DirectionalMessage(values, message_id), state
    )[1]
  )
  directions = fs.make_directions(design, DIM, k)
  return tx, step, directions


DESIGNS = {name: _transform(name) for name in fs.DESIGNS}

# |fl(g + beta s) - g| exceeds beta by at most a rounding of g + beta s.
def _slack(tracker):
  return 4 * F32.eps * (np.abs(tracker) + BETA)


@pytest.mark.parametrize('design', fs.DESIGNS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_server_step_is_finite_and_bounded(design, data):
  tx, step, directions = DESIGNS[design]
  size = DIM if design == 'coordinate' else K
  messages = data.draw(_messages(size))
  first_id = data.draw(st.integers(0, 2**20))
  state = tx.init(jnp.zeros(DIM, jnp.float32))
  for offset, values in enumerate(messages):
    message_id = first_id + offset
    old = np.asarray(state.tracker, np.float64)
    state = step(jnp.asarray(values), jnp.int32(message_id), state)
    _assert_finite(state)
    new = np.asarray(state.tracker, np.float64)
    delta = new - old
    nan = np.isnan(values)

    if design == 'coordinate':
      assert np.all(np.abs(delta) <= BETA + _slack(old))
      assert np.all(delta[nan] == 0)
      continue
    assert np.linalg.norm(delta) <= BETA * K * (1 + 1e-5)
    if nan.all():
      assert np.all(delta == 0)
      continue
    # delta = beta * c @ U with c in {-1, 0, 1}; recover c (U has
    # orthonormal or nearly orthogonal rows: least squares is well posed).
    key = directions.message_key(jax.random.key(3), message_id)
    u = np.asarray(directions.directions(key), np.float64)
    if np.linalg.svd(u, compute_uv=False).min() < 0.1:
      continue  # rare near-dependent draw: c is not identifiable
    c = np.linalg.lstsq(u.T, delta / BETA, rcond=None)[0]
    # float32 sums of k unit vectors: 1e-3 is far above their rounding.
    np.testing.assert_allclose(c[nan], 0.0, atol=1e-3)
    np.testing.assert_allclose(
      np.abs(c[~nan]) * (1 - np.abs(c[~nan])), 0.0, atol=1e-3
    )


_method = fs.far_sign_method(DIM, ALPHA, BETA, 'gaussian', K, seed=1)
_apply = jax.jit(_method.apply)


@settings(max_examples=25, deadline=None)
@given(messages=_messages(K), first_id=st.integers(0, 2**20))
def test_far_sign_method_apply_keeps_the_server_finite(messages, first_id):
  state = _method.init(jnp.ones(DIM, jnp.float32))
  for offset, values in enumerate(messages):
    old = np.asarray(_method.params(state), np.float64)
    state = _apply(
      state, jnp.asarray(values), jnp.int32(first_id + offset), jnp.int32(0)
    )
    _assert_finite(state)
    # x moves by alpha * g, and g by at most beta * k per message.
    step = np.asarray(_method.params(state), np.float64) - old
    assert np.linalg.norm(step) <= ALPHA * BETA * K * (offset + 1) * 1.01


def _aggregators():
  # `mean` is the undefended rule: two rows of 3.4e38 overflow it to inf,
  # which is what "a single adversary breaks it" means.
  rows, byzantine = 7, 2
  return {
    name: jax.jit(aggregators.make_aggregator(name, rows, byzantine))
    for name in aggregators.AGGREGATORS
    if name != 'mean'
  }


AGGREGATE = _aggregators()


@pytest.mark.parametrize('name', sorted(AGGREGATE))
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_aggregators_stay_finite(name, data):
  # Up to two adversarial rows (the rules tolerate f = 2 of n = 7) carry
  # anything; the honest rows are ordinary numbers.
  honest = data.draw(
    st.lists(
      st.lists(st.floats(-10.0, 10.0, width=32), min_size=K, max_size=K),
      min_size=5, max_size=5,
    )
  )
  bad = data.draw(
    st.lists(
      st.lists(entries, min_size=K, max_size=K), min_size=2, max_size=2
    )
  )
  messages = np.array(honest + bad, np.float32)
  order = data.draw(st.permutations(range(7)))
  valid = np.array(data.draw(st.lists(st.booleans(), min_size=7,
                                      max_size=7)))
  valid[:5] = True  # the honest rows arrive
  out = AGGREGATE[name](jnp.asarray(messages[order]), jnp.asarray(valid[order]))
  assert np.all(np.isfinite(np.asarray(out))), (name, messages, out)


@pytest.mark.parametrize('name', sorted(AGGREGATE))
def test_aggregators_survive_overflowing_rows(name):
  # Two rows at the float32 limit: their sum overflows; a robust rule must
  # not add them up. Five honest zero rows, all valid.
  messages = np.zeros((7, K), np.float32)
  messages[5:] = 3.4e38
  out = AGGREGATE[name](jnp.asarray(messages), jnp.ones(7, bool))
  assert np.all(np.isfinite(np.asarray(out)))
