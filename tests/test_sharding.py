"""The worker axis sharded over 8 forced CPU devices against one device.

``XLA_FLAGS=--xla_force_host_platform_device_count=8`` only takes effect if
it is set before ``jax`` is imported, so the comparison runs in a fresh
Python process and reports back as JSON.
"""

import json
import os
import subprocess
import sys
import textwrap

import jax
import pytest

from farsign_jax._src.simulator import sharding

_SCRIPT = textwrap.dedent(
  """
  import json
  import jax
  import jax.numpy as jnp
  import numpy as np

  import farsign_jax as fs
  from farsign_jax._src import data as data_lib
  from farsign_jax._src import models as models_lib
  from farsign_jax._src.simulator import driver, engine, sharding
  from farsign_jax._src.simulator.config import SimulationConfig

  rng = np.random.default_rng(0)
  labels = rng.integers(0, 10, 400).astype(np.int32)
  images = rng.integers(0, 255, (400, 28, 28)).astype(np.uint8)
  dataset = data_lib.Dataset(images, labels, images[:50], labels[:50])
  model = models_lib.flat_model(
    models_lib.make_model('logreg'), jax.random.key(0)
  )
  out = {'devices': jax.device_count()}
  for mode in ('snapshot', 'ring'):
    config = SimulationConfig(
      num_workers=32, batch_size=8, tick_size=8, staleness=mode,
      max_staleness=16 if mode == 'ring' else None, seed=1,
    )
    method = fs.far_sign_method(model.num_params, 0.3, 0.01)
    single = driver.build_workers(
      method, fs.make_attack('sign_flip'), config, model, dataset
    )
    mesh = sharding.worker_mesh()
    sharded = sharding.shard_workers(single, mesh)
    run_ticks = jax.jit(
      lambda workers, state: jax.lax.scan(
        lambda s, _: engine.tick(workers, s, jnp.int32(300)),
        state, length=60,
      )
    )
    traces = []
    for workers in (single, sharded):
      state = engine.init_state(workers)
      if workers.mesh is not None:
        state = sharding.shard_state(state, workers)
      state, record = run_ticks(workers, state)
      valid = np.asarray(record.valid)
      trace = np.stack([
        np.asarray(record.workers)[valid],
        np.asarray(record.message_ids)[valid],
        np.asarray(record.staleness)[valid],
      ])
      traces.append((trace, state))
    (trace_1, state_1), (trace_8, state_8) = traces
    params_1 = np.asarray(single.method.params(state_1.server))
    params_8 = np.asarray(sharded.method.params(state_8.server))
    out[mode] = {
      'messages': int(state_8.version),
      'same_trace': bool(np.array_equal(trace_1, trace_8)),
      'trace_length': int(trace_1.shape[1]),
      'same_clock': float(state_1.clock) == float(state_8.clock),
      'same_workers': all(
        np.array_equal(getattr(state_1, name), getattr(state_8, name))
        for name in ('arrival_time', 'jobs', 'read_version')
      ),
      'max_param_diff': float(np.abs(params_1 - params_8).max()),
      'param_scale': float(np.abs(params_1).max()),
      'arrival_devices': len(state_8.arrival_time.sharding.device_set),
      'views_devices': len(state_8.views.sharding.device_set),
      'views_sharded': not state_8.views.sharding.is_fully_replicated,
    }
  print('RESULT ' + json.dumps(out))
  """
)


@pytest.fixture(scope='module')
def eight_devices():
  env = dict(os.environ)
  env['XLA_FLAGS'] = (
    env.get('XLA_FLAGS', '') + ' --xla_force_host_platform_device_count=8'
  ).strip()
  env['JAX_PLATFORMS'] = 'cpu'
  done = subprocess.run(
    [sys.executable, '-c', _SCRIPT],
    env=env,
    capture_output=True,
    text=True,
    timeout=300,
  )
  assert done.returncode == 0, done.stderr[-3000:]
  line = [x for x in done.stdout.splitlines() if x.startswith('RESULT ')]
  return json.loads(line[-1][len('RESULT ') :])


@pytest.mark.parametrize('mode', ['snapshot', 'ring'])
def test_sharded_run_matches_single_device(eight_devices, mode):
  assert eight_devices['devices'] == 8
  result = eight_devices[mode]
  assert result['messages'] == 300
  # The events come from counters and the order of arrival times: exactly
  # the same on one device or eight.
  assert result['trace_length'] == 300
  assert result['same_trace']
  assert result['same_clock'] and result['same_workers']
  # Each message's gradient is the same per-row computation on either
  # layout; only the summation order inside a device's matmul may differ.
  # FAR-SIGN takes signs of residuals, so a last-bit change can flip one
  # sign and move one coordinate by 2 * alpha * beta = 6e-3 at most; after
  # 300 messages we allow 1e-4, i.e. no flip in practice.
  assert result['max_param_diff'] <= 1e-4, result
  assert result['param_scale'] > 1e-3  # the run moved the parameters


def test_sharded_state_lives_on_every_device(eight_devices):
  snapshot, ring = eight_devices['snapshot'], eight_devices['ring']
  assert snapshot['arrival_devices'] == 8
  assert snapshot['views_devices'] == 8 and snapshot['views_sharded']
  # The ring of recent versions is read by every worker: replicated.
  assert ring['views_devices'] == 8 and not ring['views_sharded']


def test_shard_workers_rejects_uneven_split(tiny_dataset, logreg):
  import farsign_jax as fs
  from farsign_jax._src.simulator import driver
  from farsign_jax._src.simulator.config import SimulationConfig

  config = SimulationConfig(num_workers=10, batch_size=4)
  workers = driver.build_workers(
    fs.far_sign_method(logreg.num_params, 0.3, 0.01),
    fs.make_attack('none'),
    config,
    logreg,
    tiny_dataset,
  )
  devices = jax.devices()[:1] * 1
  mesh = jax.sharding.Mesh(devices, ('other',))
  with pytest.raises(ValueError, match='`mesh` must have'):
    sharding.shard_workers(workers, mesh)
  with pytest.raises(ValueError, match='workers.mesh'):
    sharding.shard_state(None, workers)


def test_worker_mesh_rejects_no_devices():
  with pytest.raises(ValueError, match='`devices`'):
    sharding.worker_mesh([])
