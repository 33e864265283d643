r"""InfoGAN on MNIST whose categorical code finds the ten digits in almost every run, without
labels; `:paper` is Chen et al.'s recipe (2016) as published.

  python run.py --config configs/infogan_mnist.py --workdir runs/infogan_mnist
  python run.py --config configs/infogan_mnist.py:paper --workdir runs/infogan_paper
  python run.py --config configs/infogan_mnist.py:smoke --workdir /tmp/smoke
  python run.py --config configs/infogan_mnist.py:paper,smoke --workdir /tmp/smoke

Their MNIST settings, kept by both: 62 noise dims, a 10-way categorical code, two continuous
codes; G FC1024-FC7x7x128-up64-up1, D conv64-conv128-FC1024 (batch norm, LeakyReLU 0.1), Q
FC128 on D's last hidden layer; Adam beta1 0.5, lr 1e-3 for G and 2e-4 for D (and Q, which
shares D's optimizer as in their code), batch 128, mutual-information weight 1, continuous
codes uniform on [-1, 1] with a unit-variance Gaussian posterior, 5,000 steps.
`test_code_accuracy` in results.json is the categorical code used as a digit classifier of
the test images (best one-to-one code-to-digit mapping); Chen et al. report 95%, which
about 3 runs in 8 of their recipe reach (docs/results_history.md).

What the default adds, all without labels (docs/infogan.md has the seed studies):
- `gan.real_balance_weight=1`: KL(Q's mean posterior over a real batch || uniform) in D's
  loss, so no category holds two digits (IMSAT's marginal term);
- `gan.real_consistency_weight=1`, `gan.real_consistency_transform='affine'`: Q gives a
  real image and a randomly rotated, sheared, zoomed and shifted copy the same category
  (IMSAT's and IIC's augmentation consistency), so slant and size cannot become the code;
- `gan.restarts=2`, `gan.restart_steps=1000`: two restarts (seeds `seed`, `seed + 1`) of
  1,000 steps, and the run goes on from the one whose Q has the larger mutual information
  between training image and category (jgen/restarts.py). The run trains 6,000 steps.
Other options, off: `gan.real_entropy_weight`, `model.noise_scale` (ClusterGAN's narrow
noise).
"""

from configs import common

VARIANTS = ('paper', 'smoke')


def get_config(arg=None):
  variants = [v for v in (arg or '').split(',') if v]
  unknown = sorted(set(variants) - set(VARIANTS))
  if unknown:
    raise ValueError(f'unknown config variant {",".join(unknown)!r}; known: '
                     f'{", ".join(VARIANTS)}, or both as paper,smoke')
  config = common.gan_config()
  config.data.name = 'mnist'
  config.num_train_steps = 5000
  config.model.name = 'infogan'
  config.model.features = 64
  config.model.kernel_size = 4
  config.model.num_resamples = 0  # Stride-2 stages in each network (0: from the image size).
  config.model.dense_size = 1024
  config.model.noise_dim = 62
  config.model.categories = 10
  config.model.continuous = 2
  config.model.q_hidden_size = 128  # Units of Q's hidden layer.
  config.model.leak = 0.1  # LeakyReLU slope in D and Q (their appendix).
  config.model.noise_scale = 1.0  # The noise is uniform on [-noise_scale, noise_scale].
  config.gan.loss = 'non_saturating'
  config.gan.info_weight = 1.0
  config.gan.info_continuous_weight = 1.0
  if 'paper' not in variants:
    config.gan.real_balance_weight = 1.0
    config.gan.real_consistency_weight = 1.0
    config.gan.real_consistency_transform = 'affine'
    # A smoke run (20 steps) is too short for restarts; tests/test_gan_run.py runs them.
    if 'smoke' not in variants:
      config.gan.restarts = 2
      config.gan.restart_steps = 1000
  config.g_optimizer.learning_rate = 1e-3
  config.d_optimizer.learning_rate = 2e-4
  config.log_every_steps = 100
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 500
  config.num_image_examples = 100
  return common.finish(config, 'smoke' if 'smoke' in variants else None)
