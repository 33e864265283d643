r"""The convolutional autoencoder of conv_ae_mnist.py on Fashion-MNIST.

  python run.py --config configs/conv_ae_fashion_mnist.py --workdir runs/conv_ae_fashion
  python run.py --config configs/conv_ae_fashion_mnist.py:smoke --workdir /tmp/smoke
"""

from configs import common, conv_ae_mnist


def get_config(arg=None):
  config = conv_ae_mnist.unlocked_config()
  config.data.name = 'fashion_mnist'
  return common.finish(config, arg)
