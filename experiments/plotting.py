"""Accuracy curves as PNG files."""

from __future__ import annotations

import os


def plot_curves(records: dict, path: str, title: str = '') -> None:
  """Test accuracy against messages and against virtual time.

  Args:
    records: label -> run record (with a ``curve`` list of points).
    path: the PNG file to write.
    title: the figure's title.
  """
  import matplotlib

  matplotlib.use('Agg')
  import matplotlib.pyplot as plt

  figure, (by_messages, by_time) = plt.subplots(
    1, 2, figsize=(11, 4), constrained_layout=True
  )
  for label, record in records.items():
    curve = record['curve']
    accuracy = [p['accuracy'] for p in curve]
    by_messages.plot([p['messages'] for p in curve], accuracy, label=label)
    by_time.plot([p['virtual_time'] for p in curve], accuracy, label=label)
  for axes, xlabel in (
    (by_messages, 'messages applied'),
    (by_time, 'virtual time (s)'),
  ):
    axes.set_xlabel(xlabel)
    axes.set_ylabel('test accuracy')
    axes.set_ylim(0.0, 1.0)
    axes.axhline(0.8, color='grey', linewidth=0.8, linestyle=':')
    axes.grid(alpha=0.3)
  by_time.legend(loc='lower right', fontsize='small')
  if title:
    figure.suptitle(title)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  figure.savefig(path, dpi=110)
  plt.close(figure)
