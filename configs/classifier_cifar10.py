r"""The feature classifier recipe on CIFAR-10's 32x32x3 images (needs the internet once).

  python run.py --config configs/classifier_cifar10.py --workdir runs/classifier_cifar10
  python run.py --config configs/classifier_cifar10.py --workdir runs/classifier_cifar10 \
      --mode export

No CIFAR-10 classifier ships: this machine has no offline source of the dataset. The network
is MNIST's (classifier_mnist.py), wider and trained longer, with 2-pixel shifts; its accuracy
on CIFAR-10 has not been measured.
"""

from configs import classifier_mnist, common


def get_config(arg=None):
  config = classifier_mnist.unlocked_config('cifar10')
  config.num_train_steps = 20_000
  config.model.features = (64, 128, 256, 128)
  config.model.feature_dim = 256
  config.model.dropout = 0.3
  return common.finish(config, arg)
