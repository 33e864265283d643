r"""A convolutional VAE on dynamically binarised MNIST: the conv autoencoder's encoder and
decoder (stride-2 convolutions down, sub-pixel convolutions up) around 32 Gaussian latents.

  python run.py --config configs/conv_vae_mnist.py --workdir runs/conv_vae_mnist
  python run.py --config configs/conv_vae_mnist.py:smoke --workdir /tmp/smoke
"""

from configs import common


def get_config(arg=None):
  config = common.vae_config()
  config.data.name = 'mnist'
  config.num_train_steps = 20_000
  config.batch_size = 128
  config.eval_batch_size = 100
  config.log_every_steps = 500
  config.eval_every_steps = 5000
  config.checkpoint_every_steps = 2000
  config.num_image_examples = 64

  config.model.name = 'conv_vae'
  config.model.features = (32, 64)
  config.model.latent_dim = 32
  config.model.activation = 'relu'
  config.model.likelihood = 'bernoulli'
  config.vae.binarize = True
  config.vae.importance_samples = 1000
  config.optimizer.learning_rate = 1e-3
  if arg == 'smoke':
    # Each conv decoding costs about 100 MLP ones: 10,000 test images x 20 samples was most
    # of the test suite's longest smoke run.
    config.vae.importance_samples = 4
    config.vae.eval_importance_samples = 2
    config.vae.importance_chunk = 2
  return common.finish(config, arg)
