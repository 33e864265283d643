r"""Goodfellow et al. 2014's MLP GAN on MNIST, with the seed's minimax generator loss.

  python run.py --config configs/gan_mnist.py --workdir runs/gan_mnist
  python run.py --config configs/gan_mnist.py:smoke --workdir /tmp/smoke
  python run.py --config configs/gan_mnist.py --workdir runs/gan_ns --config.gan.loss=non_saturating

Their code's networks: G 100 uniform noise -> 1200 ReLU -> 1200 ReLU -> 784 sigmoid (here
tanh on [-1, 1], the same function); D maxout 240x5 -> 240x5 -> sigmoid with dropout (0.2
on the input, 0.5 on hidden layers), one D update per G update. The generator minimises
log(1 - D(G(z))) as the seed writes it; the seed (and the paper) note that it saturates
early in training, which `non_saturating` fixes. They used SGD with momentum; Adam
(lr 2e-4, beta1 0.5) is used here, as in all jgen GANs.
"""

from configs import common


def get_config(arg=None):
  config = common.gan_config()
  config.data.name = 'mnist'
  config.num_train_steps = 10_000
  config.batch_size = 100
  config.model.name = 'mlp_gan'
  config.model.generator_sizes = (1200, 1200)
  config.model.discriminator_sizes = (240, 240)
  config.model.maxout_pieces = 5
  config.model.dropout = 0.5
  config.model.input_dropout = 0.2
  config.model.noise_dim = 100
  config.model.noise = 'uniform'  # The latent: uniform on [-1, 1] (theirs) or normal.
  config.gan.loss = 'minimax'
  config.log_every_steps = 200
  config.eval_every_steps = 2000
  config.checkpoint_every_steps = 1000
  return common.finish(config, arg)
