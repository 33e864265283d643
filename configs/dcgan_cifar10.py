r"""DCGAN on CIFAR-10 (32x32x3): 4x4x256 -> 8x8x128 -> 16x16x64 -> 32x32x3 generator.

  python run.py --config configs/dcgan_cifar10.py --workdir runs/dcgan_cifar10
  python run.py --config configs/dcgan_cifar10.py:smoke --workdir /tmp/smoke

TFDS downloads CIFAR-10 (needs the internet once; there is no offline source).
"""

from configs import common, dcgan_mnist


def get_config(arg=None):
  config = dcgan_mnist.unlocked_config('cifar10')
  config.num_train_steps = 20_000
  config.eval_every_steps = 5000
  config.checkpoint_every_steps = 1000
  return common.finish(config, arg)
