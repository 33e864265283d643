"""The in-process API (`jgen.Trainer`, `jgen.load_config`, user registrations) and the
registered toy dataset `ring8`: everything here trains in this process, on ring8 (seconds).
"""

import json

import jax
import numpy as np
import pytest
from conftest import ROOT, read_metrics

import jgen
from jgen.data import registered

RING = str(ROOT / 'configs' / 'gan_ring.py')
SMOKE = {'num_train_steps': 20, 'batch_size': 32, 'log_every_steps': 5,
         'eval_every_steps': 10, 'checkpoint_every_steps': 10, 'evals.modes.num_samples': 200}


def _softplus(x):
  return jax.nn.softplus(x)


def _offset_d(*, real_logits, fake_logits):
  return _softplus(-real_logits) + _softplus(fake_logits) + 10.0


def _relativistic_g_plus_100(*, fake_logits, real_logits):
  return _softplus(-(fake_logits - real_logits)) + 100.0


def test_a_loss_registered_from_user_code_is_what_the_step_minimises(tmp_path):
  """Its values (offset so that no built-in loss can produce them) are the logged losses,
  and its generator loss receives D's logits on real images (`uses_real`)."""
  jgen.register_adversarial_loss('test_offset_relativistic', _offset_d,
                                 _relativistic_g_plus_100, uses_real=True)
  config = jgen.load_config(RING, SMOKE | {'gan.loss': 'test_offset_relativistic'})
  jgen.Trainer(config, str(tmp_path)).train()
  rows = [r for r in read_metrics(tmp_path) if 'train/d_adv' in r]
  assert len(rows) == 4
  for row in rows:
    assert 10.0 < row['train/d_adv'] < 10.0 + 2 * np.log(2) + 1.0
    assert 100.0 < row['train/g_adv'] < 102.0
    assert row['train/g_loss'] == row['train/g_adv']  # No InfoGAN term here.


def test_a_reconstruction_loss_registered_from_user_code_trains_an_autoencoder(tmp_path):
  jgen.register_reconstruction_loss(
      'test_l2_plus_1000', lambda *, logits, targets: 1000.0 + jax.numpy.square(
          jax.nn.sigmoid(logits) - targets).reshape(len(targets), -1).sum(-1))
  config = jgen.load_config(str(ROOT / 'configs' / 'ae_mnist.py') + ':smoke', {
      'data.name': 'ring8', 'loss': 'test_l2_plus_1000', 'model.latent_dim': 2,
      'model.hidden_sizes': (16,), 'evals.test.every_steps': -1})
  results = jgen.Trainer(config, str(tmp_path)).train()
  assert 1000.0 < results['final_train_loss'] < 1002.0


def test_unknown_and_builtin_names_are_one_line_errors_before_any_work(tmp_path):
  workdir = tmp_path / 'run'
  config = jgen.load_config(RING, SMOKE | {'gan.loss': 'relativistic_typo'})
  with pytest.raises(jgen.ConfigError) as error:
    jgen.Trainer(config, str(workdir))
  message = str(error.value)
  assert message.startswith("unknown adversarial loss 'relativistic_typo'; known: ")
  assert 'hinge' in message and '\n' not in message
  assert not workdir.exists()
  with pytest.raises(jgen.ConfigError, match="'hinge' is already registered"):
    jgen.register_adversarial_loss('hinge', _offset_d, _relativistic_g_plus_100)
  with pytest.raises(jgen.ConfigError, match="no field 'gan.los'"):
    jgen.load_config(RING, {'gan.los': 'hinge'})
  with pytest.raises(jgen.ConfigError, match='unknown config variant'):
    jgen.load_config(RING + ':smok')
  with pytest.raises(jgen.ConfigError, match=r'jgen.compare.run\(config, workdir\)'):
    jgen.Trainer(jgen.load_config(str(ROOT / 'configs' / 'compare_mnist.py:smoke')),
                 str(workdir))
  assert not workdir.exists()


def test_steps_stopped_and_continued_in_a_new_trainer_end_as_one_run(tmp_path):
  """Iterating `steps` yourself, stopping at a step that is no checkpoint interval, and
  continuing in a new Trainer (a restored checkpoint) gives the uninterrupted run's state
  and logged metrics exactly."""
  config = jgen.load_config(RING, SMOKE)
  whole = jgen.Trainer(config, str(tmp_path / 'whole'))
  whole.train()
  first = jgen.Trainer(config, str(tmp_path / 'split'))
  logged = dict(first.steps(until=7))
  assert sorted(logged) == list(range(1, 8))
  assert set(logged[5]) >= {'train/d_loss', 'train/g_loss'} and logged[6] == {}
  first.close()
  second = jgen.Trainer(config, str(tmp_path / 'split'))
  assert second.step == 7
  later = dict(second.steps())
  assert sorted(later) == list(range(8, 21))
  assert set(later[10]) >= {'modes/modes', 'modes/high_quality', 'test/d_real'}
  second.finish()
  for a, b in zip(jax.tree.leaves(jax.device_get(whole.state)),
                  jax.tree.leaves(jax.device_get(second.state)), strict=True):
    np.testing.assert_array_equal(a, b)
  assert read_metrics(tmp_path / 'whole') == read_metrics(tmp_path / 'split')
  curves = jgen.read_metrics(str(tmp_path / 'split'))
  np.testing.assert_array_equal(curves['train/g_loss'][0], [5, 10, 15, 20])
  with pytest.raises(jgen.ConfigError, match='this Trainer is closed'):
    next(second.steps(until=20))  # finish() closed it.
  with pytest.raises(jgen.ConfigError, match='raise num_train_steps'):
    next(jgen.Trainer(config, str(tmp_path / 'split')).steps(until=25))
  samples = second.sample(300)
  assert samples.shape == (300, 1, 1, 2)
  np.testing.assert_array_equal(second.generate(second.latents(300)), samples)
  assert json.loads((tmp_path / 'split' / 'results.json').read_text()) == second.results


def test_a_dataset_registered_from_user_code_trains_and_is_evaluated(tmp_path):
  """Two modes on a line; the registered modes feed the mode_coverage evaluator."""
  modes = np.array([[0.3, 0.5], [0.7, 0.5]], np.float32).reshape(2, 1, 1, 2)

  def make():
    rng = np.random.default_rng(0)
    out = {}
    for split, n in (('train', 2000), ('test', 500)):
      labels = rng.integers(0, 2, n)
      out[split] = (modes[labels] + 0.01 * rng.standard_normal((n, 1, 1, 2)), labels)
    return out

  jgen.register_dataset('test_two_points', make, example_shape=(1, 1, 2), num_classes=2,
                        modes=modes, mode_std=0.01)
  config = jgen.load_config(RING, SMOKE | {'data.name': 'test_two_points'})
  results = jgen.Trainer(config, str(tmp_path / 'ok')).train()
  assert {'modes_modes', 'modes_high_quality', 'test_d_real'} <= set(results)
  jgen.register_dataset('test_bad_shape', make, example_shape=(1, 1, 3))
  config = jgen.load_config(RING, SMOKE | {'data.name': 'test_bad_shape'})
  with pytest.raises(jgen.ConfigError, match="'test_bad_shape' split 'train'.*example_shape"):
    jgen.Trainer(config, str(tmp_path / 'bad'))


def test_mode_coverage_of_real_collapsed_and_scattered_points():
  splits = registered.make_ring(num_train=8000, num_test=0)
  points, _ = splits['train']
  centres, std = registered.ring_centres(), registered.RING_STD
  real = registered.mode_coverage(points, centres, std)
  assert real['modes'] == 8
  assert abs(real['high_quality'] - (1 - np.exp(-4.5))) < 0.005  # Rayleigh: P(r < 3 sigma).
  assert real['mode_kl'] < 0.01
  collapsed = registered.mode_coverage(np.repeat(centres[:1], 1000, 0), centres, std)
  assert collapsed['modes'] == 1 and np.isclose(collapsed['mode_kl'], np.log(8))
  def at(counts):  # counts[k] points exactly at centre k.
    return np.concatenate([np.repeat(centres[k:k + 1], n, 0) for k, n in counts.items()])

  two = registered.mode_coverage(at({0: 700, 4: 300}), centres, std)
  assert two['modes'] == 2 and two['high_quality'] == 1.0
  # A mode with under a quarter of its fair share (1000 / 8 / 4 = 31.25) is not covered.
  few = registered.mode_coverage(at({0: 970, 1: 30}), centres, std)
  assert few['modes'] == 1
  centre_of_ring = registered.mode_coverage(np.full((100, 1, 1, 2), 0.5), centres, std)
  assert centre_of_ring['high_quality'] == 0.0 and centre_of_ring['modes'] == 0


def test_a_parameter_average_is_what_training_eval_mode_and_reconstructions_read(
    tmp_path, mnist_source):
  """With `optimizer.ema_decay`, the test error the run reports, `--mode=eval` of its
  checkpoint and the reconstructions are those of the averaged parameters, not of the last
  parameters (which score differently)."""
  from jgen import modes
  from jgen.evaluate import evaluators

  config = jgen.load_config(str(ROOT / 'configs' / 'ae_mnist.py:smoke'), {
      'model.hidden_sizes': (256, 64), 'optimizer.ema_decay': 0.9, 'data.download': False})
  trainer = jgen.Trainer(config, str(tmp_path))
  results = trainer.train()
  key = 'test_sq_err_per_image'
  last = evaluators.run(trainer._entries, trainer.setup, trainer.state, step=20, final=True)
  assert abs(last[key] - results[key]) > 1e-3 * last[key]
  assert modes.evaluate_checkpoint(config, str(tmp_path))[key] == pytest.approx(
      results[key], rel=1e-6)
  images, _ = trainer.test_examples(4)
  average = trainer.state.opt_state.average
  want = trainer.state.apply_fn({'params': average}, images, method='reconstruct')
  np.testing.assert_allclose(trainer.reconstruct(images), want, atol=1e-5)
