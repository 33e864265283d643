"""notebooks/gan_losses_mnist.ipynb runs top to bottom in the small setting."""

from conftest import execute_notebook


def test_gan_losses_notebook_runs(tmp_path, monkeypatch, mnist_source):
  execute_notebook('gan_losses_mnist', tmp_path, monkeypatch)
  assert len(list((tmp_path / 'runs').glob('mnist_*/results.json'))) == 6
