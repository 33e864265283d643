r"""DCGAN on Fashion-MNIST: the MNIST DCGAN, same sizes and settings.

  python run.py --config configs/dcgan_fashion_mnist.py --workdir runs/dcgan_fashion_mnist
  python run.py --config configs/dcgan_fashion_mnist.py:smoke --workdir /tmp/smoke
"""

from configs import common, dcgan_mnist


def get_config(arg=None):
  return common.finish(dcgan_mnist.unlocked_config('fashion_mnist'), arg)
