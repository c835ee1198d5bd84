"""MNIST end to end: the main job on a subset, under sign-flip adversaries."""

import json

from experiments import common, mnist


def test_farsign_learns_mnist_under_sign_flip(mnist_dir, tmp_path):
  # 10 000 training images, 50 workers of which 20 % flip and scale their
  # messages by 10, 3 000 messages of batch 128. On the full data the same
  # budget reaches 0.89; 0.85 leaves room for the smaller training set and
  # run-to-run differences across machines (the run itself is deterministic).
  out, plot = tmp_path / 'r.json', tmp_path / 'c.png'
  code = mnist.main([
    '--data-dir', mnist_dir, '--attack', 'sign_flip', '--workers', '50',
    '--messages', '3000', '--eval-every', '500', '--train-examples', '10000',
    '--no-progress', '--out', str(out), '--plot', str(plot),
  ])
  assert code == 0
  record = json.loads(out.read_text())
  for key in ('config', 'final_accuracy', 'best_accuracy',
              'virtual_time_to_80', 'real_seconds', 'messages',
              'messages_per_second', 'curve'):
    assert key in record
  assert record['messages'] == 3000
  assert record['final_accuracy'] >= 0.85
  assert record['virtual_time_to_80'] is not None
  assert record['config']['attack'] == 'sign_flip'
  assert 0.15 < record['byzantine_message_share'] < 0.3
  point = record['curve'][-1]
  assert set(point) == {'messages', 'virtual_time', 'real_time', 'accuracy'}
  assert plot.stat().st_size > 10_000


def test_undefended_async_sgd_breaks_under_the_same_attack(mnist_dir):
  # The attack must bite: without a defence, sign-flipped gradients scaled
  # by 10 from 20 % of the workers outweigh the honest ones.
  config = common.RunConfig(
    method='async_sgd', attack='sign_flip', workers=50, messages=1500,
    eval_every=500, train_examples=10000,
  )
  record = common.run(config, common.load_data(mnist_dir, 10000))
  assert record['final_accuracy'] < 0.5
