"""The comparison end to end on its smoke variant: trains, reports, and reruns for free."""

import json
import os

import pytest
from conftest import execute_notebook, run_jgen


@pytest.fixture(scope='module')
def comparison(tmp_path_factory, mnist_source):
  workdir = tmp_path_factory.mktemp('compare')
  run_jgen('--config', 'configs/compare_mnist.py:smoke', '--workdir', str(workdir), timeout=900)
  return workdir


def test_report_has_every_model_seed_and_picture(comparison):
  report = (comparison / 'report.md').read_text()
  results = json.loads((comparison / 'results.json').read_text())
  assert sorted(results) == ['dcgan', 'deep_ae']
  for name, runs in results.items():
    assert len(runs) == 2, name  # Two seeds in the smoke variant.
    assert runs[0]['seed'] == 0 and runs[1]['seed'] == 1
    assert runs[0]['samples_frechet'] != runs[1]['samples_frechet']  # Seeds differ.
    row = next(line for line in report.splitlines() if line.startswith(f'| {name} | 2/2 |'))
    assert row.count('±') >= 10, row
  for name in results:
    assert (comparison / 'report' / f'samples_{name}.png').exists()
    assert f'report/samples_{name}.png' in report
  assert (comparison / 'report' / 'curve_curve_frechet.png').exists()
  assert '| dcgan | non_saturating | 0/2 |' in report
  assert '| real training vs test images |' in report


def test_comparison_notebook_reads_the_workdir(comparison, tmp_path, monkeypatch):
  """notebooks/autoencoders_vs_gans.ipynb, top to bottom on this comparison (small setting)."""
  book = execute_notebook('autoencoders_vs_gans', tmp_path, monkeypatch,
                          JGEN_COMPARE_WORKDIR=str(comparison))
  printed = ''.join(o.get('text', '') for c in book.cells if c.cell_type == 'code'
                    for o in c.outputs)
  assert ': 4 runs of 2 models' in printed
  assert not (tmp_path / 'runs').exists()  # It read the comparison instead of making one.


def test_rerun_trains_nothing_and_rewrites_the_same_report(comparison):
  report = (comparison / 'report.md').read_text()
  checkpoints = sorted(p.name for p in comparison.glob('runs/*/*/checkpoints/*'))
  proc = run_jgen('--config', 'configs/compare_mnist.py:smoke', '--workdir', str(comparison))
  assert 'Training ' not in proc.stderr and proc.stderr.count('Reusing ') == 4
  assert (comparison / 'report.md').read_text() == report
  assert sorted(p.name for p in comparison.glob('runs/*/*/checkpoints/*')) == checkpoints


def test_comparison_refuses_other_modes(comparison):
  proc = run_jgen('--config', 'configs/compare_mnist.py:smoke', '--workdir', str(comparison),
                  '--mode=eval', check=False)
  assert proc.returncode == 2
  assert 'a comparison config trains or reuses its runs' in proc.stderr.strip().splitlines()[-1]


def test_fashion_comparison_trains_the_same_models_on_fashion_mnist():
  from configs import compare_fashion_mnist, compare_mnist
  from jgen import compare

  fashion, mnist = compare_fashion_mnist.get_config(), compare_mnist.get_config()
  assert fashion.models.to_dict() == mnist.models.to_dict()
  for name, entry in fashion.models.items():
    for seed in fashion.seeds:
      config = compare.model_config(fashion, entry, seed)
      assert (config.data.name, config.seed, config.num_train_steps) == (
          'fashion_mnist', seed, entry.steps), name
      assert config.evals.samples.num_samples == fashion.num_samples


def test_publish_writes_the_docs_page_and_only_the_readme_table(comparison, tmp_path):
  from jgen import compare

  start = compare.README_START.format(name=comparison.name, workdir=str(comparison))
  readme = tmp_path / 'README.md'
  readme.write_text(f'# Title\n\nbefore\n{start}\n| old | table |\n{compare.README_END}\nafter\n')
  page = compare.publish(str(comparison), str(readme), str(tmp_path / 'docs'))
  text = readme.read_text()
  assert text.startswith(f'# Title\n\nbefore\n{start}\n| model | seeds |')
  assert text.endswith(f'{compare.README_END}\nafter\n') and '| old |' not in text
  assert '| dcgan | 2/2 |' in text and '| deep_ae | 2/2 |' in text
  assert 'KID' not in text and 'x floor' in text  # The shorter table.
  assert 'Floor (real training vs test images): Frechet' in text
  docs = (tmp_path / 'docs' / f'{comparison.name}.md').read_text()
  assert page.endswith(f'{comparison.name}.md') and '](report/' not in docs
  assert f'](images/{comparison.name}/samples_dcgan.png)' in docs
  assert (tmp_path / 'docs' / 'images' / comparison.name / 'samples_dcgan.png').exists()
  compare.publish(str(comparison), str(readme), str(tmp_path / 'docs'))
  assert readme.read_text() == text  # Idempotent.


def test_publish_without_markers_names_the_lines_to_add(comparison, tmp_path):
  from jgen import compare

  readme = tmp_path / 'README.md'
  readme.write_text('# Title\n')
  with pytest.raises(compare.ConfigError, match='has no table markers'):
    compare.publish(str(comparison), str(readme), str(tmp_path / 'docs'))
  assert readme.read_text() == '# Title\n'
  assert not (tmp_path / 'docs').exists()



def test_killed_comparison_leaves_no_worker_training(mnist_source, tmp_path):
  """SIGKILL of the comparison (no chance to clean up) takes its training workers with it,
  so that a rerun never shares a workdir with an orphan still training."""
  import subprocess
  import sys
  import time

  proc = subprocess.Popen(
      [sys.executable, 'run.py', '--config', 'configs/compare_mnist.py:smoke', '--workdir',
       str(tmp_path)], stderr=subprocess.PIPE, text=True)
  for line in proc.stderr:
    if 'Training dcgan in' in line:  # Logged by a worker: both have started.
      break
  workers = [pid for pid in _processes() if _stat(pid)[1] == proc.pid
             and b'spawn_main' in _cmdline(pid)]
  assert len(workers) == 2, workers
  proc.kill()
  proc.wait()
  proc.stderr.close()
  deadline = time.time() + 30
  while time.time() < deadline and any(_stat(pid)[0] not in ('', 'Z') for pid in workers):
    time.sleep(0.2)
  assert all(_stat(pid)[0] in ('', 'Z') for pid in workers)  # Gone (or dead, not reaped).


def _processes() -> list[int]:
  return [int(p) for p in os.listdir('/proc') if p.isdigit()]


def _stat(pid: int) -> tuple[str, int]:
  """(state, parent pid) of a process; ('', 0) once it is gone."""
  try:
    with open(f'/proc/{pid}/stat') as f:
      fields = f.read().rsplit(')', 1)[1].split()
    return fields[0], int(fields[1])
  except (OSError, IndexError, ValueError):
    return '', 0


def _cmdline(pid: int) -> bytes:
  try:
    with open(f'/proc/{pid}/cmdline', 'rb') as f:
      return f.read()
  except OSError:
    return b''
