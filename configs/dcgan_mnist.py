r"""DCGAN (Radford et al. 2015) on MNIST: 7x7x128 -> 14x14x64 -> 28x28x1 generator.

  python run.py --config configs/dcgan_mnist.py --workdir runs/dcgan_mnist
  python run.py --config configs/dcgan_mnist.py:smoke --workdir /tmp/smoke
  python run.py --config configs/dcgan_mnist.py --workdir runs/dcgan_mnist --mode sample

Radford et al.'s choices are the defaults (common.gan_config, models.dcgan): strided
convolutions, batch norm in both networks except G's output and D's input layer, ReLU in G,
LeakyReLU(0.2) in D, tanh output, N(0, 0.02) weights, Adam lr 2e-4 beta1 0.5, batch 128.
Kernels are 4x4 (PyTorch's DCGAN example) rather than their 5x5.
"""

from configs import common


def unlocked_config(dataset: str = 'mnist'):
  config = common.gan_config()
  config.data.name = dataset
  config.num_train_steps = 3000
  config.model.name = 'dcgan'
  config.model.features = 64
  config.model.kernel_size = 4
  config.model.norm = 'batch'
  config.model.discriminator_norm = ''  # D's own normalisation ('': as `norm`).
  config.model.num_resamples = 0  # Stride-2 stages in each network (0: from the image size).
  config.model.noise_dim = 100
  config.model.noise = 'normal'  # The latent's distribution: normal, or uniform on [-1, 1].
  # G's upsampling, one layer computed three ways: strided, subpixel or transpose.
  config.model.upsampling = 'strided'
  config.gan.loss = 'non_saturating'
  config.log_every_steps = 100
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 500
  return config


def get_config(arg=None):
  return common.finish(unlocked_config(), arg)
