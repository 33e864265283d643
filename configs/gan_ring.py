r"""A small MLP GAN on `ring8`, the 2-D ring of 8 Gaussians: every adversarial loss in
seconds on a CPU, and mode collapse visible in a scatter plot.

  python run.py --config configs/gan_ring.py --workdir runs/gan_ring
  python run.py --config configs/gan_ring.py --workdir runs/ring_hinge --config.gan.loss=hinge

The ring (jgen/data/registered.py) has radius 0.8 and standard deviation 0.02 on the GAN's
[-1, 1] scale, as in Metz et al.'s unrolled GANs (radius 2, 0.02, rescaled); the
`mode_coverage` evaluator counts the modes that 2,500 samples cover and the fraction of
samples within 3 standard deviations of a mode. The networks are Goodfellow's MLP GAN,
smaller: G 16-D Gaussian noise -> 128 ReLU -> 128 ReLU -> 2 (tanh); D 128x2 maxout ->
128x2 maxout -> logit, no dropout.
"""

from configs import common


def get_config(arg=None):
  config = common.gan_config()
  config.data.name = 'ring8'
  config.num_train_steps = 3000
  config.batch_size = 256
  config.eval_batch_size = 2500
  config.model.name = 'mlp_gan'
  config.model.generator_sizes = (128, 128)
  config.model.discriminator_sizes = (128, 128)
  config.model.maxout_pieces = 2
  config.model.dropout = 0.0
  config.model.input_dropout = 0.0
  config.model.noise_dim = 16
  config.model.noise = 'normal'
  config.gan.ema_decay = 0.99
  config.g_optimizer.learning_rate = 1e-3
  config.d_optimizer.learning_rate = 1e-3
  config.log_every_steps = 100
  config.eval_every_steps = 500
  config.checkpoint_every_steps = 1000
  config.num_image_examples = 0
  # No feature classifier or labels that mean anything to a probe: mode coverage instead.
  del config.evals['samples'], config.evals['probe']
  config.evals.modes = dict(type='mode_coverage', every_steps=config.get_ref('eval_every_steps'),
                            num_samples=2500, radius_in_std=3.0, min_share=0.25, seed=0)
  return common.finish(config, arg)
