"""The notebooks: each runs top to bottom in the small setting (JGEN_NOTEBOOK_SMALL=1, a
few steps per run) on a copy, so that a failing cell fails the suite; and each is committed
with the outputs of a full run."""

import json

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / 'notebooks').glob('*.ipynb'))


def test_the_four_notebooks_are_there():
  assert [p.stem for p in NOTEBOOKS] == ['autoencoders_vs_gans', 'checkpoints',
                                         'gan_losses_mnist', 'swap_losses']


@pytest.mark.parametrize('path', NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_the_small_setting(path, tmp_path, monkeypatch, mnist_source):
  monkeypatch.setenv('JGEN_NOTEBOOK_SMALL', '1')
  monkeypatch.setenv('JGEN_NOTEBOOK_RUNS', str(tmp_path / 'runs'))
  # The comparison notebook makes its own small comparison instead of reading runs/.
  monkeypatch.setenv('JGEN_COMPARE_WORKDIR', str(tmp_path / 'no_comparison'))
  book = nbformat.read(path, as_version=4)
  NotebookClient(book, timeout=600, kernel_name='python3',
                 resources={'metadata': {'path': str(path.parent)}}).execute()
  last = book.cells[-1].outputs[-1]['text']
  assert 'small setting' in last
  assert list((tmp_path / 'runs').iterdir())  # Its runs went where it was told.


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
