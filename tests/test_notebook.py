"""The Colab notebook runs top to bottom (with a small message budget)."""

import json
import os
import pathlib

ROOT = pathlib.Path(__file__).parent.parent
NOTEBOOK = ROOT / 'colab' / 'far_sign_mnist.ipynb'


def test_notebook_runs_top_to_bottom(mnist_dir, tmp_path, monkeypatch):
  cells = json.loads(NOTEBOOK.read_text())['cells']
  code = [''.join(c['source']) for c in cells if c['cell_type'] == 'code']
  assert len(code) >= 3
  monkeypatch.setenv('FARSIGN_DATA_DIR', mnist_dir)
  monkeypatch.setenv('FARSIGN_NOTEBOOK_MESSAGES', '1000')
  monkeypatch.chdir(tmp_path)
  namespace = {}
  for source in code:
    exec(compile(source, str(NOTEBOOK), 'exec'), namespace)  # noqa: S102
  records = namespace['records']
  assert set(records) == {'farsign', 'async_sgd'}
  assert records['farsign']['final_accuracy'] > records['async_sgd'][
    'final_accuracy'
  ]
  assert os.path.getsize(tmp_path / 'sign_flip.png') > 10_000
  assert abs(float(namespace['params']['w'].mean()) - 3.0) < 0.2
