r"""A convolutional autoencoder on MNIST, 32-D code.

  python run.py --config configs/conv_ae_mnist.py --workdir runs/conv_ae_mnist
  python run.py --config configs/conv_ae_mnist.py:smoke --workdir /tmp/smoke
"""

from configs import common


def unlocked_config():
  config = common.base_config()
  config.data.name = 'mnist'
  config.num_train_steps = 5000
  config.model.name = 'conv_autoencoder'
  config.model.features = (32, 64)
  config.model.latent_dim = 32
  config.model.activation = 'relu'
  config.model.dropout = 0.0
  config.loss = 'bce'
  return config


def get_config(arg=None):
  return common.finish(unlocked_config(), arg)
