r"""Kingma & Welling's VAE on dynamically binarised MNIST, in Burda et al.'s (IWAE) size.

  python run.py --config configs/vae_mnist.py --workdir runs/vae_mnist
  python run.py --config configs/vae_mnist.py --workdir runs/vae_mnist --mode eval
  python run.py --config configs/vae_mnist.py --workdir runs/vae_mnist --mode sample
  python run.py --config configs/vae_mnist.py:smoke --workdir /tmp/smoke

The model is the IWAE paper's one-stochastic-layer MNIST model: 784-200-200-(50 Gaussian
latents)-200-200-784 Bernoulli, tanh units. `test_nll_k5000` in results.json is the test
negative log-likelihood bound from 5,000 importance samples per image (Burda et al.'s
estimator), on a test set binarised once with a fixed key; they report 86.76 nats for this
model trained as a VAE (k = 1) for 3,280 epochs.
"""

from configs import common


def get_config(arg=None):
  config = common.vae_config()
  config.data.name = 'mnist'
  config.num_train_steps = 300_000
  config.batch_size = 128
  config.eval_batch_size = 100
  config.log_every_steps = 1000
  config.eval_every_steps = 50_000
  config.checkpoint_every_steps = 10_000
  config.num_image_examples = 64

  config.model.name = 'mlp_vae'
  config.model.hidden_sizes = (200, 200)
  config.model.latent_dim = 50
  config.model.activation = 'tanh'
  config.model.likelihood = 'bernoulli'
  config.vae.binarize = True
  config.vae.beta = 1.0
  config.vae.kl_warmup_steps = 0
  config.optimizer.learning_rate = 3e-3
  config.optimizer.schedule = 'cosine'
  config.optimizer.warmup_steps = 500
  if arg == 'smoke':
    config.vae.importance_samples = 20
    config.vae.eval_importance_samples = 10
    config.vae.importance_chunk = 10
  return common.finish(config, arg)
