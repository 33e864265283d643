"""Input corruptions against numpy, and the denoising autoencoder built on them: its train step
feeds corrupted images but targets clean ones, its eval measures the denoising error on a
fixed corruption of the test split, and bad names or levels stop the run in one line."""

import json
import os
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from conftest import ROOT, run_jgen, train_losses, xla_flags

from configs import ae_mnist, dae_mnist
from jgen import augment, corrupt, data, parallel, steps
from jgen.evaluate import evaluate
from jgen.losses import reconstruction
from jgen.registry import ConfigError

NAMES = ('gaussian', 'masking', 'salt_and_pepper')


def _images(n=64, low=0.05, high=0.95, seed=0):
  """Pixels strictly inside (0, 1), so that a 0 or 1 can only come from a corruption."""
  rng = np.random.default_rng(seed)
  return rng.uniform(low, high, size=(n, 28, 28, 1)).astype(np.float32)


def _keys(n, seed=0):
  return jax.vmap(jax.random.fold_in, (None, 0))(jax.random.PRNGKey(seed), np.arange(n))


# --- Each corruption against the same random draws in numpy, and its statistics -----------

def test_masking_zeroes_the_drawn_pixels_at_the_given_rate():
  images, keys = _images(), _keys(64)
  out = np.asarray(corrupt.corrupt(images, keys, 'masking', 0.3))
  hit = np.stack([np.asarray(jax.random.bernoulli(k, 0.3, (28, 28, 1))) for k in keys])
  np.testing.assert_array_equal(out, np.where(hit, 0.0, images))
  assert set(np.unique(out[out != images])) == {0.0}
  # 50,176 pixels: the rate's standard error is 0.002.
  assert abs((out == 0).mean() - 0.3) < 0.01


def test_salt_and_pepper_sets_drawn_pixels_to_zero_or_one():
  images, keys = _images(), _keys(64)
  out = np.asarray(corrupt.corrupt(images, keys, 'salt_and_pepper', 0.2))
  want = []
  for image, key in zip(images, keys, strict=True):
    hit_key, salt_key = jax.random.split(key)
    hit = np.asarray(jax.random.bernoulli(hit_key, 0.2, image.shape))
    salt = np.asarray(jax.random.bernoulli(salt_key, 0.5, image.shape))
    want.append(np.where(hit, salt.astype(np.float32), image))
  np.testing.assert_array_equal(out, np.stack(want))
  changed = out != images
  assert set(np.unique(out[changed])) <= {0.0, 1.0}
  assert abs(changed.mean() - 0.2) < 0.01
  assert abs((out[changed] == 1).mean() - 0.5) < 0.03  # About 10,000 hits.


def test_gaussian_adds_noise_of_the_given_std_and_clips():
  images, keys = _images(), _keys(64)
  out = np.asarray(corrupt.corrupt(images, keys, 'gaussian', 0.7))
  noise = np.stack([np.asarray(jax.random.normal(k, (28, 28, 1))) for k in keys])
  np.testing.assert_allclose(out, np.clip(images + 0.7 * noise, 0, 1), atol=1e-6)
  assert out.min() == 0 and out.max() == 1  # Sigma 0.7 pushes many pixels past both ends.
  # Away from the ends (mid-grey, sigma 0.05: 9 sigmas from clipping) the noise is N(0, 0.05^2).
  grey = np.full((64, 28, 28, 1), 0.5, np.float32)
  diff = np.asarray(corrupt.corrupt(grey, keys, 'gaussian', 0.05)) - 0.5
  assert abs(diff.std() - 0.05) < 0.001 and abs(diff.mean()) < 0.001


@pytest.mark.parametrize('name', NAMES)
def test_level_zero_and_none_leave_images_unchanged(name):
  images, keys = _images(8), _keys(8)
  np.testing.assert_array_equal(corrupt.corrupt(images, keys, name, 0.0), images)
  np.testing.assert_array_equal(corrupt.corrupt(images, keys, 'none', 0.5), images)


def test_full_level_hits_every_pixel():
  images, keys = _images(8), _keys(8)
  np.testing.assert_array_equal(corrupt.corrupt(images, keys, 'masking', 1.0), 0 * images)
  out = np.asarray(corrupt.corrupt(images, keys, 'salt_and_pepper', 1.0))
  assert set(np.unique(out)) == {0.0, 1.0}


@pytest.mark.parametrize('name', NAMES)
def test_each_example_is_a_function_of_its_own_key(name):
  """Deterministic per key, different across keys, and the same alone as in any batch (so
  a batch split over devices, each example keeping its key, is corrupted identically)."""
  images, keys = _images(16), _keys(16)
  a = np.asarray(corrupt.corrupt(images, keys, name, 0.3))
  np.testing.assert_array_equal(a, corrupt.corrupt(images, keys, name, 0.3))
  alone = np.concatenate([corrupt.corrupt(images[i:i + 1], keys[i:i + 1], name, 0.3)
                          for i in range(16)])
  np.testing.assert_array_equal(a, alone)
  same_image = np.repeat(images[:1], 16, axis=0)
  b = np.asarray(corrupt.corrupt(same_image, keys, name, 0.3))
  assert len({x.tobytes() for x in b}) == 16  # Each key its own draw.
  c = np.asarray(corrupt.corrupt(images, _keys(16, seed=1), name, 0.3))
  assert not np.array_equal(a, c)


def test_eval_keys_depend_on_the_index_alone():
  np.testing.assert_array_equal(corrupt.eval_keys(np.array([7, 3]))[0],
                                corrupt.eval_keys(np.array([7]))[0])
  assert not np.array_equal(corrupt.eval_keys(np.array([7]))[0],
                            corrupt.eval_keys(np.array([8]))[0])


@pytest.mark.parametrize('name, level, message', [
    ('blur', 0.1, "unknown corruption 'blur'; known: gaussian, masking, none, salt_and_pepper"),
    ('masking', 1.5, "corrupt.level=1.5 is out of range for corruption 'masking': it must be a "
     'probability in [0, 1]'),
    ('salt_and_pepper', -0.1, "corrupt.level=-0.1 is out of range for corruption "
     "'salt_and_pepper'"),
    ('masking', float('nan'), 'corrupt.level=nan is out of range'),
    ('gaussian', -0.5, "corrupt.level=-0.5 is out of range for corruption 'gaussian': it must "
     'be a standard deviation >= 0'),
])
def test_bad_name_or_level_is_a_config_error(name, level, message):
  with pytest.raises(ConfigError, match='^' + message.replace('[', r'\[').replace('(', r'\(')):
    corrupt.check(name, level)
  with pytest.raises(ConfigError):
    corrupt.corrupt(_images(2), _keys(2), name, level)
  config = dae_mnist.get_config('smoke')
  with config.unlocked():
    config.corrupt.name, config.corrupt.level = name, level
  with pytest.raises(ConfigError):
    steps.build_task(config, (28, 28, 1))


def test_gaussian_accepts_any_nonnegative_std():
  corrupt.check('gaussian', 3.0)
  corrupt.check('none', -1.0)  # `none` ignores its level.


# --- The DAE's steps -------------------------------------------------------------------------

def _task(**corrupt_fields):
  """A small MLP autoencoder, no dropout and no shift unless asked."""
  config = dae_mnist.get_config('smoke')
  with config.unlocked():
    config.model.hidden_sizes = (32,)
    config.model.latent_dim = 8
    config.augment.max_shift = corrupt_fields.pop('max_shift', 0)
    for k, v in corrupt_fields.items():
      config.corrupt[k] = v
  return steps.build_task(config, (28, 28, 1)), config


@pytest.fixture(scope='module')
def mesh():
  return parallel.make_mesh()


def _train_loss(task, mesh, images, noisy_params=False):
  """(state, state after the step, the step's metrics) of one step from a fresh state; with
  `noisy_params`, noise is added to its parameters (biases start at 0)."""
  state = task.init_state(jax.random.PRNGKey(0))
  if noisy_params:
    leaves, tree = jax.tree.flatten(state.params)
    rng = np.random.default_rng(0)
    leaves = [x + 0.3 * rng.standard_normal(x.shape).astype(np.float32) for x in leaves]
    state = state.replace(params=jax.tree.unflatten(tree, leaves))
  state = parallel.replicate(mesh, state)
  fn = parallel.data_parallel(task.train_step, mesh)
  batch = parallel.shard_batch(mesh, {'image': images, 'label': np.zeros(len(images), np.int32)})
  new_state, metrics = fn(state, batch)
  return state, new_state, jax.device_get(metrics)


def _apply(task_config, params, images):
  from jgen import models

  model = models.build_model(**task_config.model, image_shape=(28, 28, 1))
  return model.apply({'params': params}, images, train=False)


def test_train_step_feeds_corrupted_images_and_targets_clean_ones(mesh):
  """At masking level 1 every input is blank, so the loss must be that of the blank input's
  reconstruction against the clean images (not against blank targets). The parameters are
  perturbed: at initialisation (zero biases) a blank input gives logits of exactly 0,
  whose BCE ignores the target."""
  images = _images(32, low=0.0, high=1.0)
  task, config = _task(name='masking', level=1.0)
  state, _, metrics = _train_loss(task, mesh, images, noisy_params=True)
  params = jax.device_get(state.params)
  logits = _apply(config, params, np.zeros_like(images))
  bce = reconstruction.bce(logits=logits, targets=images).mean()
  np.testing.assert_allclose(metrics['loss'], bce, rtol=1e-5)
  against_blank = reconstruction.bce(logits=logits, targets=0 * images).mean()
  assert abs(float(against_blank) - float(bce)) > 1e-3 * float(bce)  # 100 x the tolerance.
  sq_err = reconstruction.mse(logits=logits, targets=images).mean()
  np.testing.assert_allclose(metrics['sq_err_per_image'], sq_err, rtol=1e-5)


def test_corruption_changes_the_loss_only_when_trained_on(mesh):
  images = _images(32, low=0.0, high=1.0)
  _, _, plain = _train_loss(_task(name='none')[0], mesh, images)
  _, _, dae = _train_loss(_task(name='masking', level=0.25)[0], mesh, images)
  _, _, baseline = _train_loss(_task(name='masking', level=0.25, train=False)[0], mesh, images)
  assert abs(dae['loss'] - plain['loss']) > 1e-3 * plain['loss']
  assert baseline == plain  # corrupt.train=False trains exactly the plain autoencoder.


def test_train_step_without_corruption_keeps_its_randomness(mesh):
  """With shifts and no corruption, the step's keys are those it had before corruptions
  existed (each example's key split in two), so resumed or compared runs are unchanged."""
  images = _images(32, low=0.0, high=1.0)
  task, config = _task(name='none', max_shift=1)
  state, _, metrics = _train_loss(task, mesh, images)
  key = jax.random.fold_in(jax.device_get(state.rng), 0)
  keys = jax.vmap(jax.random.fold_in, (None, 0))(key, np.arange(32))
  shift_keys = jax.vmap(jax.random.split)(keys)[:, 0]
  shifted = augment.random_shift(images, shift_keys, 1)
  logits = _apply(config, jax.device_get(state.params), shifted)
  want = reconstruction.bce(logits=logits, targets=shifted).mean()
  np.testing.assert_allclose(metrics['loss'], want, rtol=1e-5)


def _eval(task, mesh, state, batch):
  fn = parallel.data_parallel(task.eval_step, mesh)
  return jax.device_get(fn(state, parallel.shard_batch(mesh, batch)))


def test_eval_denoise_error_is_the_clean_target_error_of_the_fixed_corruption(mesh):
  task, config = _task(name='salt_and_pepper', level=0.3)
  state = parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(0)))
  params = jax.device_get(state.params)
  images = _images(32, low=0.0, high=1.0)
  index = np.arange(100, 132, dtype=np.int32)
  mask = np.r_[np.ones(20), np.zeros(12)].astype(np.float32)
  sums = _eval(task, mesh, state, {'image': images, 'label': np.zeros(32, np.int32),
                                   'mask': mask, 'index': index})
  noisy = corrupt.corrupt(images, corrupt.eval_keys(index), 'salt_and_pepper', 0.3)
  per_image = reconstruction.mse(logits=_apply(config, params, noisy), targets=images)
  np.testing.assert_allclose(sums['denoise_sq_err_per_image'], per_image[:20].sum(), rtol=1e-5)
  clean = reconstruction.mse(logits=_apply(config, params, images), targets=images)
  np.testing.assert_allclose(sums['sq_err_per_image'], clean[:20].sum(), rtol=1e-5)
  assert float(sums['count']) == 20
  # Keyed by index, not by position: the same examples in another order sum the same.
  order = np.random.default_rng(0).permutation(32)
  shuffled = _eval(task, mesh, state, {'image': images[order], 'label': np.zeros(32, np.int32),
                                       'mask': mask[order], 'index': index[order]})
  np.testing.assert_allclose(shuffled['denoise_sq_err_per_image'],
                             sums['denoise_sq_err_per_image'], rtol=1e-5)
  # The same model trained on clean inputs is measured on the same corrupted images.
  baseline, _ = _task(name='salt_and_pepper', level=0.3, train=False)
  again = _eval(baseline, mesh, state, {'image': images, 'label': np.zeros(32, np.int32),
                                        'mask': mask, 'index': index})
  assert again['denoise_sq_err_per_image'] == sums['denoise_sq_err_per_image']


def test_plain_autoencoder_eval_reports_no_denoise_error(mesh):
  task = steps.build_task(ae_mnist.get_config('smoke'), (28, 28, 1))
  state = parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(0)))
  sums = _eval(task, mesh, state, {'image': _images(8), 'label': np.zeros(8, np.int32),
                                   'mask': np.ones(8, np.float32)})
  assert set(sums) == {'loss', 'sq_err_per_image', 'count'}


def test_denoise_error_on_mnist_does_not_depend_on_the_eval_batch_size(mnist_source, mesh):
  """Through the real eval pipeline (last batch padded): 1,500 test images in batches of
  1,000 or of 300 give the same figure."""
  task, _ = _task(name='masking', level=0.25)
  state = parallel.replicate(mesh, task.init_state(jax.random.PRNGKey(0)))
  fn = parallel.data_parallel(task.eval_step, mesh)
  results = [evaluate(fn, state, data.eval_batches(mnist_source, split='test',
                                                   global_batch_size=size, num_examples=1500),
                      mesh)
             for size in (1000, 300)]
  assert results[0]['denoise_sq_err_per_image'] > 0
  assert results[0]['denoise_sq_err_per_image'] != results[0]['sq_err_per_image']
  for key in results[0]:
    np.testing.assert_allclose(results[1][key], results[0][key], rtol=1e-5, err_msg=key)


# --- Through run.py -------------------------------------------------------------------------

def test_dae_four_devices_match_one(tmp_path, mnist_source):
  """Corruption in training and evaluation is keyed per example, so devices change nothing.
  (The two runs go side by side: most of each is start-up.)"""
  procs = {}
  for devices in (1, 4):
    # XLA:CPU's own (Eigen) matrix products: YNNPACK's (jgen's default) round by the
    # per-device batch, which moved this error by 2.6e-4 relative between 1 and 4 devices
    # after 20 steps; what this test checks is the corruption's keys.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2',
               XLA_FLAGS=f'{xla_flags(devices)} --xla_cpu_experimental_ynn_fusion_type=')
    procs[devices] = subprocess.Popen(
        [sys.executable, 'run.py', '--config', 'configs/dae_mnist.py:smoke', '--workdir',
         str(tmp_path / str(devices)), '--config.data.download=False'],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  for p in procs.values():
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err[-3000:]
  one, four = (json.loads((tmp_path / d / 'results.json').read_text()) for d in ('1', '4'))
  assert four['num_devices'] == 4
  np.testing.assert_allclose(four['test_denoise_sq_err_per_image'],
                             one['test_denoise_sq_err_per_image'], rtol=1e-4)
  losses_one, losses_four = train_losses(tmp_path / '1'), train_losses(tmp_path / '4')
  assert losses_one.keys() == losses_four.keys() and len(losses_one) >= 4
  np.testing.assert_allclose([losses_four[s] for s in sorted(losses_four)],
                             [losses_one[s] for s in sorted(losses_one)], rtol=1e-4)
  assert sorted(p.name.rsplit('_', 1)[0] for p in (tmp_path / '1' / 'images').iterdir()) == [
      'denoised', 'reconstructions']


@pytest.mark.parametrize('override, message', [
    ('--config.corrupt.name=blur',
     "error: unknown corruption 'blur'; known: gaussian, masking, none, salt_and_pepper"),
    ('--config.corrupt.level=1.5',
     "error: corrupt.level=1.5 is out of range for corruption 'masking': it must be a "
     'probability in [0, 1]'),
])
def test_bad_corruption_fails_fast_with_one_line(override, message, tmp_path):
  start = time.time()
  proc = run_jgen('--config', 'configs/dae_mnist.py:smoke', '--workdir', str(tmp_path / 'run'),
                  override, check=False)
  assert proc.returncode == 2 and 'Traceback' not in proc.stderr
  assert proc.stderr.strip().splitlines()[-1] == message, proc.stderr[-2000:]
  assert time.time() - start < 30
  assert not (tmp_path / 'run').exists()
