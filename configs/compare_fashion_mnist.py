r"""Autoencoders vs GANs on Fashion-MNIST: the MNIST comparison's models and budgets.

  python run.py --config configs/compare_fashion_mnist.py --workdir runs/compare_fashion_mnist
  python run.py --config configs/compare_fashion_mnist.py:smoke --workdir /tmp/compare_smoke

Every model keeps its MNIST config (architecture, optimizer, budget) and trains on
Fashion-MNIST instead; the sample metrics use jgen's Fashion-MNIST classifier. Needs
Fashion-MNIST prepared (`make data` where Debian's dataset-fashion-mnist is installed).
"""

from configs import compare_mnist


def get_config(arg=None):
  config = compare_mnist.unlocked_config(arg)
  config.title = 'Autoencoders vs GANs on Fashion-MNIST'
  config.dataset = 'fashion_mnist'
  config.lock()
  return config
