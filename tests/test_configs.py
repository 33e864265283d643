"""Every training config trains its smoke variant end to end through `run.py` (a file of its
own, so that pytest-xdist can run it beside test_run.py)."""

import json
import os

import numpy as np
import pytest
from conftest import EVALS, ROOT, is_prepared, run_jgen

# Training configs; the comparisons (many runs each) are tested in test_compare.py.
CONFIGS = sorted(p.name for p in (ROOT / 'configs').glob('*.py')
                 if p.name not in ('__init__.py', 'common.py')
                 and not p.name.startswith('compare_'))
# Configs whose datasets need the internet: they train on fake examples in test_gan_run.py.
ONLINE_CONFIGS = ('classifier_cifar10.py', 'dcgan_celeba64.py', 'dcgan_cifar10.py')


@pytest.mark.parametrize('config', [c for c in CONFIGS if c not in ONLINE_CONFIGS])
def test_every_config_trains_its_smoke_variant(config, tmp_path, mnist_source):
  if 'fashion' in config and not is_prepared('fashion_mnist'):
    pytest.skip('fashion_mnist not prepared (needs dataset-fashion-mnist or the internet)')
  classifier = config.startswith('classifier')  # It has no sample or probe evaluation.
  toy = config == 'gan_ring.py'  # 2-D points: mode coverage instead of samples and probes.
  run_jgen('--config', f'configs/{config}:smoke', '--workdir', str(tmp_path),
           *(() if classifier or toy else EVALS))
  results = json.loads((tmp_path / 'results.json').read_text())
  for key, value in results.items():
    assert np.isfinite(value), key
  if toy:
    for key in ('test_d_real', 'final_train_d_loss', 'modes_modes', 'modes_high_quality',
                'modes_mode_kl'):
      assert key in results, key
    assert not (tmp_path / 'images').exists()  # Points are no pictures.
    return
  gan, vae = 'gan' in config, 'vae' in config
  wanted = (['test_d_real', 'final_train_d_loss', 'final_train_g_loss'] if gan else
            ['test_neg_elbo', 'test_active_units', 'final_train_loss'] if vae else
            ['test_accuracy', 'test_loss', 'final_train_loss'] if classifier else
            ['test_sq_err_per_image', 'test_loss', 'final_train_loss'])
  if not classifier:  # Every generative model is measured by its samples and its features.
    wanted += ['samples_frechet', 'samples_floor_frechet', 'samples_kid', 'samples_precision',
               'samples_recall', 'samples_density', 'samples_coverage', 'samples_class_kl']
    wanted += ([f'probe_discriminator_{k}' for k in ('linear', 'knn')] if gan else
               [f'probe_code_{k}' for k in ('linear', 'knn')])
    wanted += [f'probe_q_{k}' for k in ('linear', 'knn')] if 'infogan' in config else []
  denoising = config.startswith('dae_')  # Also measured on corrupted test images.
  wanted += ['test_denoise_sq_err_per_image'] if denoising else []
  for key in wanted + ['train_examples_per_sec', 'wall_clock_s']:
    assert key in results, key
  assert list(tmp_path.glob('events.out.tfevents.*'))
  if classifier:
    assert results['test_accuracy'] > 0.2  # 20 steps of batch 32 already beat chance (0.1).
    return
  images = sorted(os.listdir(tmp_path / 'images'))  # Sample or reconstruction grids.
  prefixes = {name.rsplit('_', 1)[0] for name in images}
  assert prefixes == ({'samples', 'traversal_category', 'traversal_code1', 'traversal_code2'}
                      if 'infogan' in config else {'samples'} if gan else
                      {'reconstructions', 'samples'} if vae else
                      {'reconstructions', 'denoised'} if denoising else {'reconstructions'})
  if 'infogan' in config:
    assert 0 < results['test_code_accuracy'] <= 1
  assert list(tmp_path.glob('events.out.tfevents.*'))


@pytest.mark.parametrize('config', CONFIGS)
def test_every_config_declares_every_option_of_its_model(config):
  """So that every `--config.model.X` override an error message or the README suggests
  exists: ml_collections refuses fields a config does not declare."""
  import inspect

  import jgen
  from jgen import models

  c = jgen.load_config(f'configs/{config}')
  options = inspect.signature(models.MODELS.get(c.model.name)).parameters
  missing = sorted(set(options) - {'image_shape', 'axis_name'} - set(c.model))
  assert not missing, f'{config} does not declare model options {missing}'


@pytest.mark.parametrize('config, overrides, message', [
    ('dcgan_mnist', {'gan.penalty': 'r1'},
     "gan.penalty='r1' needs a weight above 0; set --config.gan.penalty_weight"),
    ('dcgan_mnist', {'gan.penalty_weight': 10.0}, 'gan.penalty_weight=10.0 weighs no penalty'),
    ('dcgan_mnist', {'gan.penalty': 'r1', 'gan.penalty_weight': 1.0},
     'set --config.model.discriminator_norm=layer'),
    ('infogan_mnist', {'gan.penalty': 'r1', 'gan.penalty_weight': 1.0},
     "model 'infogan' has no other"),
    ('dcgan_mnist', {'augment.max_shift': 1}, 'augment.max_shift=1 has no effect on a gan'),
    ('dcgan_mnist', {'gan.info_weight': 2.0}, "gan.info_weight=2.0 has no effect: model 'dcgan'"),
    ('gan_mnist', {'gan.real_balance_weight': 1.0},
     "gan.real_balance_weight=1.0 has no effect: model 'mlp_gan'"),
    ('dcgan_mnist', {'gan.real_consistency_weight': 1.0},
     "gan.real_consistency_weight=1.0 has no effect: model 'dcgan'"),
    ('infogan_mnist', {'gan.real_consistency_transform': 'rotate'},
     "gan.real_consistency_transform='rotate' is unknown; known: shift, affine"),
    ('dcgan_mnist', {'gan.restarts': 2, 'gan.restart_steps': 5},
     "gan.restarts=2 has no effect: model 'dcgan'"),
    ('infogan_mnist', {'gan.restart_steps': 50},
     'gan.restart_steps=50 has no effect without restarts'),
    ('infogan_mnist', {'gan.restarts': 1}, 'gan.restarts=1 must be 0 (none) or at least 2'),
    ('infogan_mnist', {'gan.restarts': 2, 'gan.restart_steps': 20},
     'gan.restart_steps=20 must be at least 1 and below num_train_steps=20'),
    ('infogan_mnist', {'model.noise_scale': 0.0}, 'model.noise_scale=0.0 must be above 0'),
    ('vae_mnist', {'augment.max_shift': 1}, 'augment.max_shift=1 has no effect on a vae'),
    ('conv_ae_mnist', {'augment.shift_prob': 0.5},
     'augment.shift_prob=0.5 has no effect without a shift'),
    ('ae_mnist', {'corrupt.level': 0.3}, 'corrupt.level=0.3 has no effect with corrupt.name=none'),
    ('dcgan_mnist', {'gan.ema_decay': 1.0}, 'gan.ema_decay=1.0 must be in [0, 1)'),
    ('vae_mnist', {'optimizer.ema_decay': -0.5}, 'optimizer.ema_decay=-0.5 must be in [0, 1)'),
    ('ae_mnist', {'log_every_steps': 0}, 'log_every_steps=0 must be at least 1'),
    ('vae_mnist', {'data.name': '1e+30'}, "unknown dataset '1e+30'"),  # Not even a name.
    ('ae_mnist', {'optimizer.learning_rate': -1e-3},
     'optimizer.learning_rate=-0.001 must be above 0'),
    ('dcgan_mnist', {'d_optimizer.b2': 1.5}, 'd_optimizer.b2=1.5 must be in [0, 1)'),
    ('vae_mnist', {'vae.beta': -1.0}, 'vae.beta=-1.0 must be at least 0'),
    ('gan_mnist', {'model.dropout': 1.0}, 'model.dropout=1.0 must be in [0, 1)'),
    ('gan_mnist', {'model.discriminator_sizes': (False,)},  # What absl makes of `=False`.
     'model.discriminator_sizes=(False,) must be a size'),
    ('ae_mnist', {'model.hidden_sizes': (64, 0)}, 'model.hidden_sizes=(64, 0) must be a size'),
])
def test_options_are_checked_before_any_work(config, overrides, message, tmp_path):
  """Ranges, options the family ignores and penalties without weights are one ConfigError
  from `setup`, which writes nothing; where the error suggests an override, it works."""
  import jgen
  from jgen import session
  from jgen.registry import ConfigError

  c = jgen.load_config(f'configs/{config}.py:smoke', overrides)
  with pytest.raises(ConfigError) as e:
    session.setup(c, str(tmp_path / 'w'))
  assert message in str(e.value) and '\n' not in str(e.value)
  assert not (tmp_path / 'w').exists()
  if 'set --config.model.discriminator_norm=layer' in message:
    session.setup(jgen.load_config(f'configs/{config}.py:smoke', overrides | {
        'model.discriminator_norm': 'layer'}), str(tmp_path / 'fixed'))


def test_every_override_the_docs_and_errors_suggest_exists():
  """Each `--config.FIELD` the README, docs/, run.py or an error message in jgen/ names is a
  field of at least one training config (ml_collections refuses undeclared ones)."""
  import re

  import jgen

  texts = [ROOT / 'README.md', ROOT / 'run.py', *(ROOT / 'docs').glob('*.md'),
           *(ROOT / 'jgen').rglob('*.py')]
  named = {m for path in texts
           for m in re.findall(r'--config\.([a-z_0-9.]*[a-z_0-9])', path.read_text())}
  named -= {'field', 'FIELD'}  # The README's placeholder.
  assert len(named) >= 20
  configs = [jgen.load_config(f'configs/{c}') for c in CONFIGS]

  def has(config, dotted):
    node = config
    for part in dotted.split('.'):
      if not hasattr(node, 'keys') or part not in node:
        return False
      node = node[part]
    return True

  missing = sorted(f for f in named if not any(has(c, f) for c in configs))
  assert not missing, f'suggested overrides no config declares: {missing}'


def test_infogan_default_is_the_paper_recipe_plus_the_method_and_nothing_else():
  """`infogan_mnist.py` and its `:paper` variant differ in the five fields of the method
  (docs/infogan.md) and no other; `paper,smoke` is the recipe shrunk; a misspelt variant is
  one error naming the known ones."""
  import jgen

  default, paper = (jgen.load_config(f'configs/infogan_mnist.py{v}').to_dict()
                    for v in ('', ':paper'))
  method = {'real_balance_weight': (1.0, 0.0), 'real_consistency_weight': (1.0, 0.0),
            'real_consistency_transform': ('affine', 'shift'), 'restarts': (2, 0),
            'restart_steps': (1000, 1000)}
  for name, (want_default, want_paper) in method.items():
    assert (default['gan'].pop(name), paper['gan'].pop(name)) == (want_default, want_paper)
  assert default == paper
  small = jgen.load_config('configs/infogan_mnist.py:paper,smoke')
  assert small.num_train_steps == 20 and small.gan.real_balance_weight == 0.0
  assert jgen.load_config('configs/infogan_mnist.py:smoke').gan.restarts == 0
  with pytest.raises(jgen.ConfigError, match="unknown config variant 'papr'; known: paper"):
    jgen.load_config('configs/infogan_mnist.py:papr')
