"""The notebooks: each is committed with the outputs of a full run, and each runs top to
bottom in the small setting (`conftest.execute_notebook`: a failing cell fails the suite).

The executions are spread over test files so that pytest-xdist (whole files per worker)
runs them side by side: `EXECUTED_IN` names the file that executes each notebook.
"""

import json

import nbformat
import pytest
from conftest import ROOT, execute_notebook

NOTEBOOKS = sorted((ROOT / 'notebooks').glob('*.ipynb'))
EXECUTED_IN = {
    'autoencoders_vs_gans': 'test_compare.py',  # On the smoke comparison it makes anyway.
    'checkpoints': 'test_notebook_checkpoints.py',
    'gan_losses_mnist': 'test_notebook_gan_losses.py',
    'swap_losses': 'test_notebooks.py',
}


def test_every_notebook_is_executed_by_a_test():
  assert sorted(p.stem for p in NOTEBOOKS) == sorted(EXECUTED_IN)
  for name, test_file in EXECUTED_IN.items():
    assert f"execute_notebook('{name}'" in (ROOT / 'tests' / test_file).read_text(), name


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_with_the_outputs_of_a_full_run(path):
  """Every code cell ran, in order, without an error, in the full setting; and the file
  stays small enough to review (PNG figures, no logs)."""
  book = nbformat.read(path, as_version=4)
  code = [c for c in book.cells if c.cell_type == 'code']
  assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
  outputs = [o for c in code for o in c.outputs]
  assert not [o for o in outputs if o.output_type == 'error']
  assert not [o for o in outputs if o.output_type == 'stream' and o.name == 'stderr']
  assert 'full setting' in code[-1].outputs[-1]['text']
  assert any('image/png' in o.get('data', {}) for o in outputs)
  assert len(json.dumps(book)) < 1_000_000


def test_swap_losses_notebook_runs(tmp_path, monkeypatch, mnist_source):
  execute_notebook('swap_losses', tmp_path, monkeypatch)
  runs = sorted(p.name for p in (tmp_path / 'runs').iterdir())
  assert runs == ['ae_bce', 'ae_l1', 'ae_mse', 'ring_hinge', 'ring_least_squares',
                  'ring_minimax', 'ring_non_saturating', 'ring_relativistic',
                  'ring_wasserstein']
