r"""The feature classifier of Fashion-MNIST's sample metrics (see classifier_mnist.py).

  python run.py --config configs/classifier_fashion_mnist.py \
      --workdir runs/classifier_fashion_mnist

The same network as MNIST's, trained longer with more dropout and 1-pixel shifts (clothes
are centred and fill the frame more than digits do).
"""

from configs import classifier_mnist, common


def get_config(arg=None):
  config = classifier_mnist.unlocked_config('fashion_mnist')
  config.num_train_steps = 6000  # 12.8 epochs.
  config.augment.max_shift = 1
  config.model.dropout = 0.4
  return common.finish(config, arg)
