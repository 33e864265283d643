r"""WGAN-GP (Gulrajani et al. 2017) on MNIST with the DCGAN networks.

  python run.py --config configs/wgan_gp_mnist.py --workdir runs/wgan_gp_mnist
  python run.py --config configs/wgan_gp_mnist.py:smoke --workdir /tmp/smoke

Their settings: Wasserstein loss, gradient penalty weight 10, 5 critic updates per generator
update, Adam lr 1e-4, betas (0, 0.9); the critic uses layer norm instead of batch norm (the
penalty is per example, which batch statistics would mix).
"""

from configs import common, dcgan_mnist


def get_config(arg=None):
  config = dcgan_mnist.unlocked_config('mnist')
  config.num_train_steps = 5000
  config.model.discriminator_norm = 'layer'
  config.gan.loss = 'wasserstein'
  config.gan.penalty = 'gradient_penalty'
  config.gan.penalty_weight = 10.0
  config.gan.n_critic = 5
  for opt in (config.g_optimizer, config.d_optimizer):
    opt.learning_rate = 1e-4
    opt.b1 = 0.0
    opt.b2 = 0.9
  config.batch_size = 64
  return common.finish(config, arg)
