r"""Autoencoders vs GANs on MNIST: every model of the seed, 3 seeds, one report.

  python run.py --config configs/compare_mnist.py --workdir runs/compare_mnist
  python run.py --config configs/compare_mnist.py:smoke --workdir /tmp/compare_smoke

Trains (or reuses, or resumes) each model below for each seed under WORKDIR/runs, then
writes WORKDIR/report.md. Budgets are far below each model's own default, so read the
report as a comparison at small cost, not as each model's best. Measured on this 2-core CPU
(2026-11-29): the 24 runs take about 130 minutes of one core in all (the sum of their
wall-clock times, evaluation included; each model's `minutes` below is its measured time a
run), InfoGAN (11.6 a run) and WGAN-GP (9.5) the largest shares; with one worker per core
the whole command took 69 minutes (its first pass, InfoGAN then at 400 steps, partly beside
other work). InfoGAN has 600 steps: at 400 its seeds 0 and 2 were 61 and 89 times their
Frechet floor, at 600 13 and 30 (its seed 1 breaks down into one class at both budgets).
WGAN-GP has 150 steps of 5 critic updates each. The VAEs' likelihood is
bounded with K=100 (MLP) and K=10 (conv: each of its decodings costs about 100 times the
MLP's) importance samples here; their own configs use 5000 and 1000.
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
  # ae_mnist.py's batch-128 Adam recipe of before its fewer-examples default (batch 32, the
  # line, weight decay), so that this comparison stays the one its figures come from.
  config.models.deep_ae = _model('ae_mnist', 3000, 3.6, ('batch_size', 128),
                                 ('optimizer.learning_rate', 1e-3),
                                 ('optimizer.schedule', 'cosine'),
                                 ('optimizer.weight_decay', 0.0))
  config.models.denoising_ae = _model('dae_mnist', 3000, 4)
  config.models.vae = _model('vae_mnist', 3000, 1.3, ('vae.importance_samples', 100))
  config.models.conv_vae = _model('conv_vae_mnist', 600, 6, ('vae.importance_samples', 10))
  config.models.mlp_gan = _model('gan_mnist', 1500, 2.6)
  config.models.dcgan = _model('dcgan_mnist', 600, 4.8)
  # Chen et al.'s recipe, as the report measured it (600 steps leave no room for restarts).
  config.models.infogan = _model('infogan_mnist', 600, 11.6, ('gan.real_balance_weight', 0.0),
                                 ('gan.real_consistency_weight', 0.0),
                                 ('gan.real_consistency_transform', 'shift'),
                                 ('gan.restarts', 0))
  config.models.wgan_gp = _model('wgan_gp_mnist', 150, 9.5)
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
