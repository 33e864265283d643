"""VAEs and autoencoders as generative models, end to end: device-count invariance, the final
evaluation's many importance samples, sampling from priors and from fitted code densities,
and the latent pictures."""

import json

import numpy as np
import pytest
from conftest import read_metrics, run_jgen, train_losses
from PIL import Image

SMOKE = ['--config', 'configs/vae_mnist.py:smoke']


@pytest.fixture(scope='module')
def vae_run(tmp_path_factory, mnist_source):
  """vae_mnist's smoke run on one device."""
  workdir = tmp_path_factory.mktemp('vae1')
  run_jgen(*SMOKE, '--workdir', str(workdir))
  return workdir


@pytest.fixture(scope='module')
def ae_run(tmp_path_factory, mnist_source):
  """ae_mnist's smoke run with a 2-D code."""
  workdir = tmp_path_factory.mktemp('ae2d')
  run_jgen('--config', 'configs/ae_mnist.py:smoke', '--config.model.latent_dim=2',
           '--workdir', str(workdir))
  return workdir


def test_vae_logs_its_objective_and_evaluates_with_more_samples_at_the_end(vae_run):
  rows = read_metrics(vae_run)
  train_rows = [r for r in rows if 'train/loss' in r]
  for key in ('train/recon', 'train/kl', 'train/elbo', 'train/kl_weight', 'train/l2_grads'):
    assert all(np.isfinite(r[key]) for r in train_rows), key
  for r in train_rows:  # ELBO = -(recon + KL) with the KL weight at 1.
    np.testing.assert_allclose(r['train/elbo'], -(r['train/recon'] + r['train/kl']), rtol=1e-5)
  results = json.loads((vae_run / 'results.json').read_text())
  # The smoke config: 10 importance samples during training, 20 for the final figure.
  assert 'test_nll_k20' in results and 'test_nll_k10' not in results
  # The k-sample bound is tighter than the ELBO (a bound on -log p(x) from above).
  assert results['test_nll_k20'] < results['test_neg_elbo']
  assert 0 <= results['test_active_units'] <= 50
  images = {p.name.rsplit('_', 1)[0] for p in (vae_run / 'images').glob('*.png')}
  assert images == {'reconstructions', 'samples'}


def test_vae_four_devices_match_one(vae_run, tmp_path):
  run_jgen(*SMOKE, '--workdir', str(tmp_path), devices=4)
  for key in ('train/loss', 'train/l2_grads', 'train/l2_updates'):
    one, four = train_losses(vae_run, key), train_losses(tmp_path, key)
    assert one.keys() == four.keys() and len(one) >= 4
    np.testing.assert_allclose([four[s] for s in sorted(four)], [one[s] for s in sorted(one)],
                               rtol=1e-4, err_msg=key)
  one = json.loads((vae_run / 'results.json').read_text())
  four = json.loads((tmp_path / 'results.json').read_text())
  for key in ('test_nll_k20', 'test_neg_elbo', 'test_kl'):
    np.testing.assert_allclose(four[key], one[key], rtol=1e-4, err_msg=key)


def test_eval_mode_uses_the_final_number_of_importance_samples(vae_run):
  results = json.loads((vae_run / 'results.json').read_text())
  run_jgen(*SMOKE, '--workdir', str(vae_run), '--mode=eval')
  out = json.loads((vae_run / 'results.json').read_text())
  np.testing.assert_allclose(out['test_nll_k20'], results['test_nll_k20'], rtol=1e-6)


def _samples(path):
  with np.load(path) as f:
    return f['images']


def test_vae_samples_from_its_prior(vae_run):
  run_jgen(*SMOKE, '--workdir', str(vae_run), '--mode=sample', '--num_samples=9')
  images = _samples(vae_run / 'samples' / 'samples_0000020.npz')
  assert images.shape == (9, 28, 28, 1) and images.dtype == np.uint8
  assert len({im.tobytes() for im in images}) == 9


@pytest.mark.parametrize('sampler', ['gaussian', 'gmm'])
def test_autoencoder_samples_from_a_density_of_its_training_codes(ae_run, sampler):
  proc = run_jgen('--config', 'configs/ae_mnist.py:smoke', '--config.model.latent_dim=2',
                  '--workdir', str(ae_run), '--mode=sample', '--num_samples=6',
                  f'--sampler={sampler}', '--num_components=3')
  images = _samples(ae_run / 'samples' / f'samples_{sampler}_0000020.npz')
  assert images.shape == (6, 28, 28, 1)
  assert len({im.tobytes() for im in images}) == 6
  assert '60000 training codes' in proc.stderr  # Fitted to the whole training split.


def test_latent_pictures_of_a_2d_autoencoder(ae_run):
  run_jgen('--config', 'configs/ae_mnist.py:smoke', '--config.model.latent_dim=2',
           '--workdir', str(ae_run), '--mode=latent')
  sizes = {}
  for name in ('interpolation', 'manifold', 'scatter'):
    with Image.open(ae_run / 'latent' / f'{name}_0000020.png') as im:
      sizes[name] = (im.width, im.height)
  # 8 rows of (start, 10 decodings, end) 28x28 tiles with 1-px gaps, PNGs enlarged 2x.
  assert sizes['interpolation'] == (2 * (12 * 29 + 1), 2 * (8 * 29 + 1))
  assert sizes['manifold'] == (2 * 20 * 28, 2 * 20 * 28)
  assert sizes['scatter'] == (1024, 1024)


def test_latent_mode_on_a_50d_vae_draws_interpolations_only(vae_run):
  run_jgen(*SMOKE, '--workdir', str(vae_run), '--mode=latent')
  assert sorted(p.name for p in (vae_run / 'latent').iterdir()) == [
      'interpolation_0000020.png']


@pytest.mark.parametrize('args, message', [
    (['--config', 'configs/vae_mnist.py:smoke', '--mode=sample', '--sampler=flow'],
     "error: unknown sampler 'flow'; known: prior, gaussian, gmm"),
    (['--config', 'configs/ae_mnist.py:smoke', '--mode=sample', '--sampler=prior'],
     "error: model family 'autoencoder' cannot sample with 'prior': it has no prior; use "
     '--sampler=gmm'),
    (['--config', 'configs/dcgan_mnist.py:smoke', '--mode=sample', '--sampler=gmm'],
     "error: model family 'gan' cannot sample with 'gmm': it has no encoder; use "
     '--sampler=prior'),
    (['--config', 'configs/dcgan_mnist.py:smoke', '--mode=latent'],
     "error: model family 'gan' has no encoder: latent pictures need an autoencoder or a VAE"),
    (['--config', 'configs/vae_mnist.py:smoke', '--config.vae.importance_samples=0'],
     'error: vae.importance_samples=0 must be at least 1 (--config.vae.importance_samples=...)'),
])
def test_bad_sampling_inputs_fail_with_one_line(args, message, tmp_path):
  proc = run_jgen(*args, '--workdir', str(tmp_path), check=False, timeout=60)
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1] == message
  assert 'Traceback' not in proc.stderr
  assert not (tmp_path / 'checkpoints').exists()
