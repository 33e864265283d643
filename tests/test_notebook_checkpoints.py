"""notebooks/checkpoints.ipynb runs top to bottom in the small setting."""

from conftest import execute_notebook


def test_checkpoints_notebook_runs(tmp_path, monkeypatch, mnist_source):
  book = execute_notebook('checkpoints', tmp_path, monkeypatch)
  printed = ''.join(o.get('text', '') for c in book.cells if c.cell_type == 'code'
                    for o in c.outputs)
  assert 'identical to the trained state: True' in printed
  assert 'starts at step 20' in printed and 'now at step 40' in printed
