r"""Hinton & Salakhutdinov's deep autoencoder (784-1000-500-250-30) on MNIST.

  python run.py --config configs/ae_mnist.py --workdir runs/ae_mnist
  python run.py --config configs/ae_mnist.py:smoke --workdir /tmp/smoke

What was chosen and why: see the comments on each field.
"""

from configs import common


def get_config(arg=None):
  config = common.base_config()
  config.data.name = 'mnist'
  config.model.name = 'mlp_autoencoder'
  config.model.hidden_sizes = (1000, 500, 250)
  config.model.latent_dim = 30
  config.model.activation = 'relu'
  config.model.dropout = 0.0
  config.loss = 'bce'
  return common.finish(config, arg)
