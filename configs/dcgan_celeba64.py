r"""DCGAN on CelebA at 64x64 (Radford et al.'s faces): 4x4x512 -> ... -> 64x64x3 generator.

  python run.py --config configs/dcgan_celeba64.py --workdir runs/dcgan_celeba64
  python run.py --config configs/dcgan_celeba64.py:smoke --workdir /tmp/smoke

Images are center-cropped to 108x108 and resized to 64x64, as in DCGAN's face experiments.
TFDS downloads `celeb_a` (needs the internet once; about 1.4 GB; no offline source). The
training split is cached in memory as uint8 (about 2 GB at 64x64).
"""

from configs import common, dcgan_mnist


def get_config(arg=None):
  config = dcgan_mnist.unlocked_config('celeb_a')
  config.data.center_crop = 108
  config.data.resize = 64
  config.num_train_steps = 20_000
  config.eval_every_steps = 5000
  config.checkpoint_every_steps = 1000
  return common.finish(config, arg)
