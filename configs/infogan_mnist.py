r"""InfoGAN (Chen et al. 2016) on MNIST: 62 noise dims, a 10-way categorical code, two
continuous codes, Q sharing D's trunk.

  python run.py --config configs/infogan_mnist.py --workdir runs/infogan_mnist
  python run.py --config configs/infogan_mnist.py:smoke --workdir /tmp/smoke

Their MNIST settings: G FC1024-FC7x7x128-up64-up1, D conv64-conv128-FC1024 (batch norm,
LeakyReLU 0.1), Q FC128 on D's last hidden layer; Adam beta1 0.5, lr 1e-3 for G and 2e-4
for D (and Q, which shares D's optimizer as in their code), batch 128, mutual-information
weight 1, continuous codes uniform on [-1, 1] with a unit-variance Gaussian posterior.
`test_code_accuracy` in results.json is the categorical code used as a digit classifier of
the test images (best one-to-one code-to-digit mapping); Chen et al. report 95%.

That 95% is reached by about 3 runs in 8 of this recipe (docs/results_history.md). Options
beyond the paper, off here: `gan.real_balance_weight`, `gan.real_entropy_weight` and
`gan.real_consistency_weight` (terms on Q's posterior of real images in D's loss),
`model.noise_scale`, and `gan.restarts` (label-free choice among short restarts);
docs/infogan.md has what they do and what is measured of them so far.
"""

from configs import common


def get_config(arg=None):
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
  config.g_optimizer.learning_rate = 1e-3
  config.d_optimizer.learning_rate = 2e-4
  config.log_every_steps = 100
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 500
  config.num_image_examples = 100
  return common.finish(config, arg)
