r"""Autoencoders vs GANs on MNIST: every model of the seed, 3 seeds, one report.

  python run.py --config configs/compare_mnist.py --workdir runs/compare_mnist
  python run.py --config configs/compare_mnist.py:smoke --workdir /tmp/compare_smoke

Trains (or reuses, or resumes) each model below for each seed under WORKDIR/runs, then
writes WORKDIR/report.md. Budgets are far below each model's own default, so read the
report as a comparison at small cost, not as each model's best. Measured: the 24 runs took
169 minutes in all (the sum of their wall-clock times) on one core of a 2-core CPU
beside the test suite; InfoGAN (about 12 minutes a seed) and WGAN-GP (about 17) are the
largest shares. The VAEs' likelihood is bounded with
K=100 (MLP) and K=10 (conv: each of its decodings costs about 100 times the MLP's) importance
samples here; their own configs use 5000 and 1000.
"""

import ml_collections


def _model(config: str, steps: int, minutes: float, *overrides) -> ml_collections.ConfigDict:
  """A model of the comparison: its training config, steps, the minutes one run takes on one
  CPU core (an estimate that orders the runs, longest first), and (field, value) overrides."""
  return ml_collections.ConfigDict(dict(config=config, steps=steps, minutes=minutes,
                                        overrides=overrides))


def unlocked_config(arg=None) -> ml_collections.ConfigDict:
  """The comparison on MNIST, or its `smoke` variant; unlocked, for other datasets."""
  config = ml_collections.ConfigDict()
  config.family = 'compare'
  config.title = 'Autoencoders vs GANs on MNIST'
  config.dataset = 'mnist'
  config.variant = ''  # 'smoke': each model's own :smoke config (20 steps).
  config.data = ml_collections.ConfigDict(dict(download=True))  # Given to every model.
  config.seeds = (0, 1, 2)
  # Runs trained at once, each in its own process on one CPU core; 0: one per usable core on
  # a CPU backend, one at a time on an accelerator.
  config.workers = 0
  # Fewer than the evaluators' default 10,000 samples and probe images (time).
  config.num_samples = 5000
  config.probe_examples = 5000
  config.curve_samples = 1000
  config.curve_points = 2
  config.curves = ('curve/frechet', 'curve/recall', 'curve/coverage')
  config.models = ml_collections.ConfigDict()
  config.models.deep_ae = _model('ae_mnist', 3000, 4.5)
  config.models.denoising_ae = _model('dae_mnist', 3000, 5)
  config.models.vae = _model('vae_mnist', 3000, 2, ('vae.importance_samples', 100))
  config.models.conv_vae = _model('conv_vae_mnist', 600, 7, ('vae.importance_samples', 10))
  config.models.mlp_gan = _model('gan_mnist', 1500, 3)
  config.models.dcgan = _model('dcgan_mnist', 600, 5)
  config.models.infogan = _model('infogan_mnist', 600, 11)
  config.models.wgan_gp = _model('wgan_gp_mnist', 150, 11)
  if arg == 'smoke':
    config.variant = 'smoke'
    config.seeds = (0, 1)
    config.workers = 2  # The parallel path, on any machine.
    config.num_samples = 300
    config.probe_examples = 500
    config.curve_samples = 200
    config.curve_points = 2
    for name in list(config.models):
      if name not in ('deep_ae', 'dcgan'):
        del config.models[name]
  elif arg:
    raise ValueError(f'unknown config variant {arg!r}; known: smoke')
  return config


def get_config(arg=None):
  config = unlocked_config(arg)
  config.lock()
  return config
