"""Bad values are refused where they enter, with a message that helps.

Every public constructor raises ``ValueError`` naming the argument in
backticks, echoing the value and saying what is valid; every command-line
flag is refused as a usage error (exit status 2, message on stderr) before
any data is loaded. The IDX reader's own failure modes are pinned in
``test_data.py``; here the command line is checked to report them.
"""

import math
import struct

import numpy as np
import pytest

import farsign_jax as fs
from experiments import common, mnist, soak
from farsign_jax._src import data as data_lib
from farsign_jax._src import models as models_lib
from farsign_jax._src.methods import registry
from farsign_jax._src.simulator import buffers, checkpoint
from farsign_jax._src.simulator.clock import ComputeTimeModel
from farsign_jax._src.simulator.config import SimulationConfig

NAN, INF = math.nan, math.inf

# (what is built, the words the message must hold)
CONSTRUCTORS = [
  # Simulation settings.
  (lambda: SimulationConfig(num_workers=0), ['`num_workers`', '0',
                                             'positive integer']),
  (lambda: SimulationConfig(num_workers=True), ['`num_workers`', 'True']),
  (lambda: SimulationConfig(batch_size=-3), ['`batch_size`', '-3']),
  (lambda: SimulationConfig(byzantine_fraction=1.0),
   ['`byzantine_fraction`', '1.0', '[0, 1)']),
  (lambda: SimulationConfig(byzantine_fraction=-0.1),
   ['`byzantine_fraction`', '-0.1', '[0, 1)']),
  (lambda: SimulationConfig(byzantine_fraction=NAN),
   ['`byzantine_fraction`', 'nan']),
  (lambda: SimulationConfig(straggler_fraction=1.5),
   ['`straggler_fraction`', '1.5', '[0, 1)']),
  (lambda: SimulationConfig(byzantine_fraction=0.4, straggler_fraction=0.7),
   ['`straggler_fraction=0.7`', 'stragglers']),
  (lambda: SimulationConfig(straggler_slowdown=0.5),
   ['`straggler_slowdown`', '0.5', 'at least 1']),
  (lambda: SimulationConfig(straggler_slowdown=INF),
   ['`straggler_slowdown`', 'inf', 'finite']),
  (lambda: SimulationConfig(tick_size=0), ['`tick_size`', '0']),
  (lambda: SimulationConfig(num_workers=4, tick_size=5),
   ['`tick_size=5`', '`num_workers=4`']),
  (lambda: SimulationConfig(staleness='fifo'),
   ['`staleness=\'fifo\'`', 'snapshot, ring']),
  (lambda: SimulationConfig(staleness='ring'), ['`max_staleness`', 'None']),
  (lambda: SimulationConfig(staleness='ring', max_staleness=2, tick_size=5),
   ['`max_staleness=2`', 'tick size 5']),
  (lambda: SimulationConfig(worker_chunk=0), ['`worker_chunk`', '0']),
  (lambda: SimulationConfig(partition='shards'),
   ['`partition=\'shards\'`', 'iid, dirichlet']),
  (lambda: SimulationConfig(dirichlet_alpha=0.0),
   ['`dirichlet_alpha`', '0.0', 'positive']),
  (lambda: SimulationConfig(dirichlet_alpha=INF), ['`dirichlet_alpha`', 'inf']),
  (lambda: SimulationConfig(seed=-1), ['`seed`', '-1', '2**32 - 1']),
  (lambda: SimulationConfig(seed=2**32), ['`seed`', '4294967296']),
  (lambda: ComputeTimeModel('gamma'),
   ['`compute_time=\'gamma\'`', 'exponential, lognormal, fixed']),
  (lambda: ComputeTimeModel(mean=0.0), ['`mean`', '0.0', 'positive']),
  (lambda: ComputeTimeModel(mean=INF), ['`mean`', 'inf', 'finite']),
  (lambda: ComputeTimeModel(sigma=-1.0), ['`sigma`', '-1.0']),
  (lambda: buffers.make_buffer('fifo', 4, 2, None),
   ['`staleness=\'fifo\'`', 'snapshot, ring']),
  # Directions, oracles, FAR-SIGN.
  (lambda: fs.make_directions('spiral', 10, 2),
   ['`directions=\'spiral\'`', 'coordinate, coordinate_subset, gaussian']),
  (lambda: fs.make_directions('gaussian', 0, 1), ['`dim`', '0']),
  (lambda: fs.make_directions('gaussian', 10, 11),
   ['`num_directions`', '11', '[1, d=10]']),
  (lambda: fs.make_directions('gaussian', 10, 0), ['`num_directions`', '0']),
  (lambda: fs.make_directions('gaussian', 10, True),
   ['`num_directions`', 'True']),
  (lambda: fs.make_directions('gaussian', 10),
   ['`num_directions`', 'required']),
  (lambda: fs.make_directions('coordinate', 10, 3),
   ['`num_directions=3`', 'coordinate_subset']),
  (lambda: fs.make_oracle('third_order', fs.make_directions('coordinate', 3)),
   ['`oracle=\'third_order\'`', 'first_order, zeroth_order']),
  (lambda: fs.make_oracle(
    'zeroth_order', fs.make_directions('coordinate', 3), -1e-3),
   ['`smoothing`', '-0.001', 'positive']),
  (lambda: fs.make_oracle(
    'zeroth_order', fs.make_directions('coordinate', 3), INF),
   ['`smoothing`', 'inf', 'finite']),
  (lambda: fs.scale_by_far_sign(0.0), ['`tracking_rate`', '0.0', 'positive']),
  (lambda: fs.scale_by_far_sign(NAN), ['`tracking_rate`', 'nan']),
  (lambda: fs.scale_by_far_sign(INF), ['`tracking_rate`', 'inf', 'finite']),
  (lambda: fs.scale_by_far_sign(0.1, seed=-2), ['`seed`', '-2', '2**32 - 1']),
  (lambda: fs.scale_by_far_sign(0.1, 'spiral'), ['`directions=\'spiral\'`']),
  (lambda: fs.far_sign(-1.0, 0.1), ['`learning_rate`', '-1.0']),
  (lambda: fs.inverse_power_decay(0.0, 10.0, 0.5), ['`init_value`', '0.0']),
  (lambda: fs.inverse_power_decay(0.1, INF, 0.5),
   ['`transition_steps`', 'inf']),
  (lambda: fs.inverse_power_decay(0.1, 10.0, -0.5), ['`power`', '-0.5']),
  # Attacks.
  (lambda: fs.make_attack('teleport'),
   ['`attack=\'teleport\'`', 'sign_flip', 'gaussian', 'alie']),
  (lambda: fs.make_attack('gaussian', std=-1.0), ['`std`', '-1.0', '>= 0']),
  (lambda: fs.make_attack('gaussian', std=NAN), ['`std`', 'nan', 'finite']),
  (lambda: fs.make_attack('sign_flip', scale=INF), ['`scale`', 'inf']),
  (lambda: fs.make_attack('sign_flip', scale=0.0), ['`scale`', '0.0', '> 0']),
  (lambda: fs.make_attack('constant', value=-INF), ['`value`', '-inf']),
  (lambda: fs.make_attack('alie', z=NAN), ['`z`', 'nan']),
  (lambda: fs.make_attack('alie', num_workers=0), ['`num_workers`', '0']),
  (lambda: fs.make_attack('alie', num_workers=10, num_byzantine=11),
   ['`num_byzantine`', '11', '[0, num_workers=10]']),
  (lambda: fs.make_attack('ipm', epsilon=-0.1), ['`epsilon`', '-0.1']),
  # Models and methods.
  (lambda: models_lib.make_model('resnet'), ['`name`', "'resnet'", 'logreg']),
  (lambda: models_lib.make_model('mlp', hidden=(0,)), ['`hidden`', '(0,)']),
  (lambda: registry.make_method('adam', 10, registry.MethodSettings()),
   ['`method=\'adam\'`', 'farsign', 'async_sgd']),
  (lambda: registry.make_method(
    'farsign', 10, registry.MethodSettings(decay_steps=0.0)),
   ['`decay_steps`', '0.0']),
  (lambda: registry.make_method(
    'farsign', 10, registry.MethodSettings(
      directions='gaussian', num_directions=11)),
   ['`num_directions`', '11', 'd=10']),
  (lambda: fs.far_sign_method(10, 0.1, 0.1, 'gaussian', 20),
   ['`num_directions`', '20']),
  # Data.
  (lambda: data_lib.partition(np.zeros(5, int), 6, key_or_seed=0),
   ['`num_workers`', '6', 'between 1 and the number of examples (5)']),
  (lambda: data_lib.partition(np.zeros(5, int), 2, key_or_seed=0,
                              scheme='dirichlet', dirichlet_alpha=-1.0),
   ['`dirichlet_alpha`', '-1.0']),
  (lambda: data_lib.subset(data_lib.Dataset(*[np.zeros(3)] * 4), num_train=4),
   ['`num_train`', '4', 'between 1 and 3']),
  # Checkpoints.
  (lambda: checkpoint.SimulationCheckpointer('/tmp/x', every=0),
   ['`every`', '0', 'positive integer']),
  (lambda: checkpoint.SimulationCheckpointer('', every=1), ['`directory`']),
]


@pytest.mark.parametrize(
  'build, words', CONSTRUCTORS, ids=[str(i) for i in range(len(CONSTRUCTORS))]
)
def test_constructor_refuses_bad_value(build, words):
  with pytest.raises(ValueError) as error:
    build()
  for word in words:
    assert word in str(error.value), (word, str(error.value))


def test_method_tolerance_is_a_value_error():
  method = fs.far_sign_method(10, 0.1, 0.1)
  from farsign_jax._src.simulator import driver

  with pytest.raises(ValueError, match=r'`byzantine_fraction=0.5`.*below 0.5'):
    driver.check_byzantine_fraction(method, 0.5)
  driver.check_byzantine_fraction(method, 0.49)  # tolerated
  undefended = fs.async_sgd_method(10, 0.1)
  driver.check_byzantine_fraction(undefended, 0.9)  # no limit claimed


def test_checkpoint_directory_must_not_be_a_file(tmp_path):
  path = tmp_path / 'file'
  path.write_text('x')
  with pytest.raises(ValueError, match='is a file'):
    checkpoint.SimulationCheckpointer(str(path), every=1)


# (flags, words the usage error must hold)
USAGE_ERRORS = [
  (['--method', 'adam'], ["invalid choice: 'adam'", 'farsign', 'async_sgd']),
  (['--attack', 'teleport'], ["invalid choice: 'teleport'", 'sign_flip']),
  (['--directions', 'spiral'], ["invalid choice: 'spiral'", 'gaussian']),
  (['--oracle', 'psychic'], ["invalid choice: 'psychic'", 'zeroth_order']),
  (['--model', 'resnet'], ["invalid choice: 'resnet'", 'logreg', 'mlp']),
  (['--compute-time', 'gamma'], ["invalid choice: 'gamma'", 'lognormal']),
  (['--staleness', 'fifo'], ["invalid choice: 'fifo'", 'ring']),
  (['--partition', 'shards'], ["invalid choice: 'shards'", 'dirichlet']),
  (['--workers', '0'], ['--workers', 'positive integer, got 0']),
  (['--workers', 'many'], ['--workers', "got 'many'"]),
  (['--messages', '-5'], ['--messages', 'positive integer, got -5']),
  (['--batch-size', '0'], ['--batch-size', 'got 0']),
  (['--tick-size', '0'], ['--tick-size', 'got 0']),
  (['--eval-every', '0'], ['--eval-every', 'got 0']),
  (['--train-examples', '0'], ['--train-examples', 'got 0']),
  (['--num-directions', '0'], ['--num-directions', 'got 0']),
  (['--byzantine-fraction', '1.0'], ['--byzantine-fraction', '[0, 1)', '1.0']),
  (['--byzantine-fraction', '-0.2'], ['--byzantine-fraction', '-0.2']),
  (['--byzantine-fraction', 'nan'], ['--byzantine-fraction', 'nan']),
  (['--stragglers', '1'], ['--stragglers', '[0, 1)']),
  (['--learning-rate', '0'], ['--learning-rate', 'positive', 'got 0']),
  (['--learning-rate', 'inf'], ['--learning-rate', 'finite', 'inf']),
  (['--tracking-rate', '-1'], ['--tracking-rate', 'got -1']),
  (['--smoothing', 'nan'], ['--smoothing', 'nan']),
  (['--decay-steps', '0'], ['--decay-steps', 'got 0']),
  (['--learning-rate-decay', '-1'], ['--learning-rate-decay', 'got -1']),
  (['--dirichlet-alpha', '0'], ['--dirichlet-alpha', 'got 0']),
  (['--straggler-slowdown', '0.5'], ['`straggler_slowdown`', '0.5']),
  (['--attack-strength', 'inf'], ['--attack-strength', 'finite', 'inf']),
  (['--attack', 'nan', '--attack-strength', '2'],
   ['`attack_strength`', "'nan'", 'sign_flip']),
  (['--attack', 'gaussian', '--attack-strength', '-3'], ['`std`', '-3.0']),
  (['--seed', '-1'], ['--seed', '2**32 - 1', 'got -1']),
  (['--seed', str(2**32)], ['--seed', '4294967296']),
  (['--seed', '1.5'], ['--seed', "'1.5'"]),
  (['--workers', '10', '--tick-size', '11'], ['`tick_size=11`']),
  (['--staleness', 'ring'], ['`max_staleness`', 'None']),
  (['--workers', '10', '--byzantine-fraction', '0.4', '--stragglers', '0.7'],
   ['`straggler_fraction=0.7`']),
  (['--directions', 'gaussian'], ['`--num-directions` is required']),
  (['--directions', 'gaussian', '--num-directions', '7851'],
   ['`num_directions`', '7851', 'd=7850']),
  (['--directions', 'coordinate', '--num-directions', '5'],
   ['`num_directions=5`', 'coordinate']),
  (['--byzantine-fraction', '0.5', '--stragglers', '0'],
   ['`byzantine_fraction=0.5`', "'farsign' tolerates", 'below 0.5']),
  (['--workers', '50', '--train-examples', '10'],
   ['`--workers=50`', '`--train-examples=10`']),
  (['--resume'], ['`--resume` needs `--checkpoint-dir`']),
  (['--checkpoint-every', '10'], ['`--checkpoint-every` needs']),
  (['--checkpoint-every', '0', '--checkpoint-dir', 'x'],
   ['--checkpoint-every', 'got 0']),
]


@pytest.mark.parametrize(
  'flags, words', USAGE_ERRORS, ids=[' '.join(f) for f, _ in USAGE_ERRORS]
)
def test_cli_usage_error(flags, words, capsys):
  with pytest.raises(SystemExit) as exit_info:
    mnist.parse_args(flags)
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert 'usage:' in err
  for word in words:
    assert word in err, (word, err)


def test_cli_accepts_an_evaluation_interval_beyond_the_budget():
  args = mnist.parse_args(['--messages', '10', '--eval-every', '1000'])
  assert args.config.eval_every == 1000


def test_cli_resume_without_a_checkpoint(tmp_path, capsys):
  with pytest.raises(SystemExit) as exit_info:
    mnist.parse_args(['--checkpoint-dir', str(tmp_path), '--resume'])
  assert exit_info.value.code == 2
  assert 'no checkpoint in' in capsys.readouterr().err


def _write_idx(path, array, magic=None):
  array = np.asarray(array, np.uint8)
  magic = (0x0800 | array.ndim) if magic is None else magic
  header = struct.pack('>I', magic) + b''.join(
    struct.pack('>I', n) for n in array.shape
  )
  path.write_bytes(header + array.tobytes())


def _fake_mnist(directory, bad=None, **kwargs):
  arrays = {
    'train-images-idx3-ubyte': np.zeros((4, 28, 28)),
    'train-labels-idx1-ubyte': np.arange(4),
    't10k-images-idx3-ubyte': np.zeros((2, 28, 28)),
    't10k-labels-idx1-ubyte': np.arange(2),
  }
  for name, array in arrays.items():
    if name == bad:
      _write_idx(directory / name, array, **kwargs)
    else:
      _write_idx(directory / name, array)


def _main_error(argv, capsys):
  assert mnist.main(argv) == 2
  return capsys.readouterr().err


def test_cli_data_dir_without_the_files(tmp_path, capsys):
  _write_idx(tmp_path / 'train-images-idx3-ubyte', np.zeros((1, 28, 28)))
  err = _main_error(['--data-dir', str(tmp_path), '--workers', '1'], capsys)
  for name in ('train-labels-idx1-ubyte', 't10k-images-idx3-ubyte',
               't10k-labels-idx1-ubyte'):
    assert name in err
  assert str(tmp_path) in err and '--data-dir' in err


def test_cli_idx_with_a_wrong_magic_names_the_file(tmp_path, capsys):
  _fake_mnist(tmp_path, bad='t10k-labels-idx1-ubyte', magic=0x12340801)
  err = _main_error(['--data-dir', str(tmp_path), '--workers', '1'], capsys)
  assert 't10k-labels-idx1-ubyte' in err and 'magic number' in err


def test_cli_idx_with_wrong_image_size_names_the_file(tmp_path, capsys):
  _fake_mnist(tmp_path)
  _write_idx(tmp_path / 'train-images-idx3-ubyte', np.zeros((4, 27, 28)))
  err = _main_error(['--data-dir', str(tmp_path), '--workers', '1'], capsys)
  assert 'train-images-idx3-ubyte' in err and '(27, 28)' in err


def test_cli_truncated_idx_names_the_file(tmp_path, capsys):
  _fake_mnist(tmp_path)
  path = tmp_path / 'train-labels-idx1-ubyte'
  path.write_bytes(path.read_bytes()[:-2])
  err = _main_error(['--data-dir', str(tmp_path), '--workers', '1'], capsys)
  assert 'train-labels-idx1-ubyte' in err and 'truncated' in err


def test_cli_more_workers_than_examples(tmp_path, capsys):
  _fake_mnist(tmp_path)
  err = _main_error(['--data-dir', str(tmp_path), '--workers', '5'], capsys)
  assert '`--workers=5`' in err and '4 training examples' in err


@pytest.mark.parametrize(
  'flags, words',
  [
    (['--interval', '600', '--messages', '1000'],
     ['`--interval=600`', 'at most 450']),
    (['--workers', '0'], ['--workers', 'got 0']),
    (['--margin-mb', '-1'], ['--margin-mb', 'got -1']),
    (['--warmup', '1'], ['--warmup', '[0, 1)']),
    (['--attack', 'teleport'], ['`attack=\'teleport\'`']),
  ],
)
def test_soak_usage_errors(flags, words, capsys):
  with pytest.raises(SystemExit) as exit_info:
    soak.parse_args(flags)
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  for word in words:
    assert word in err, (word, err)


def test_soak_verdict():
  mb = soak.MB
  flat = [(0, 100 * mb), (100, 700 * mb), (200, 720 * mb), (300, 730 * mb)]
  # Baseline at the first sample past 10 % (message 100): growth 30 MiB.
  result = soak.verdict(flat, 300, 0.1, 50.0, 5.0)
  assert result['passed'] and result['growth_mb'] == 30.0
  leaking = flat + [(400, 800 * mb)]
  result = soak.verdict(leaking, 400, 0.1, 50.0, 5.0)
  assert not result['passed'] and result['growth_mb'] == 100.0
  with pytest.raises(ValueError, match='No memory sample after the warm-up'):
    soak.verdict([(0, mb)], 300, 0.1, 50.0, 5.0)


def test_run_config_defaults_are_valid():
  config = common.RunConfig()
  config.simulation()
  common.build_method(config)


@pytest.mark.parametrize(
  'flags, flag',
  [
    (['--max-staleness', '5'], '--max-staleness'),
    (['--method', 'async_sgd', '--tracking-rate', '0.1'], '--tracking-rate'),
    (['--method', 'sync_median', '--tick-size', '4'], '--tick-size'),
    (['--method', 'kardam', '--oracle', 'zeroth_order'], '--oracle'),
  ],
)
def test_flags_the_run_would_ignore_are_refused(flags, flag, capsys):
  with pytest.raises(SystemExit) as exit_info:
    mnist.parse_args(flags)
  assert exit_info.value.code == 2
  assert flag in capsys.readouterr().err
