"""Fields every training config shares, and the `:smoke` shrinking of any config."""

import ml_collections


def base_config() -> ml_collections.ConfigDict:
  """The fields the train loop reads, with defaults; experiments override a few."""
  config = ml_collections.ConfigDict()
  config.family = 'autoencoder'
  config.seed = 0
  config.num_train_steps = 10_000
  config.batch_size = 128
  config.eval_batch_size = 1000
  # Compute dtype of training (float32 or bfloat16: activations and matrix products);
  # parameters and optimizer state stay float32, evaluation runs in float32.
  config.dtype = 'float32'

  config.data = ml_collections.ConfigDict()
  config.data.name = 'mnist'
  config.data.data_dir = ''  # Empty: TFDS's default ($TFDS_DATA_DIR or ~/tensorflow_datasets).
  config.data.train_split = 'train'
  config.data.test_split = 'test'
  config.data.download = True  # May TFDS try its own download before offline sources?
  config.data.center_crop = 0  # Centred square crop of every image, in pixels (0: none).
  config.data.resize = 0  # Then resize to this square size (0: none).

  config.augment = ml_collections.ConfigDict()
  config.augment.max_shift = 0  # Random translation of training images, in pixels.
  config.augment.shift_prob = 1.0  # The chance that an image is translated at all.
  # The fraction of the run (from its start) that shifts; the steps after it see the images
  # as they are (1.0: shift throughout).
  config.augment.shift_until = 1.0

  # Input corruption of a denoising autoencoder (jgen/corrupt.py); the target stays clean.
  config.corrupt = ml_collections.ConfigDict()
  config.corrupt.name = 'none'  # none, gaussian, masking or salt_and_pepper.
  # Its strength: the probability that a pixel is hit, or gaussian's standard deviation.
  config.corrupt.level = 0.0
  # True: train on corrupted inputs (a DAE). False: train a plain AE on clean inputs; the
  # test split is still corrupted to measure `denoise_sq_err_per_image` (the baseline).
  config.corrupt.train = True

  config.model = ml_collections.ConfigDict()
  config.loss = 'bce'

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = 'cosine'  # constant, cosine or linear (to 0), after warm-up.
  config.optimizer.warmup_steps = 500
  config.optimizer.grad_clip_norm = 0.0
  # An exponential moving average of the parameters, which evaluation, samples and exports
  # read (0: none, the parameters themselves; 0.999: about the last 1,000 steps).
  config.optimizer.ema_decay = 0.0

  _loop_fields(config)
  _evals(config)
  return config


def _evals(config: ml_collections.ConfigDict) -> None:
  """The evaluators (jgen/evaluate/evaluators.py); those that do not apply to a model are
  skipped. every_steps: N > 0 every N steps and at the end, 0 at the end only, -1 never."""
  config.evals = ml_collections.ConfigDict()
  config.evals.test = ml_collections.ConfigDict(
      dict(type='test_split', every_steps=config.get_ref('eval_every_steps')))
  config.evals.samples = ml_collections.ConfigDict(dict(
      type='sample_quality', every_steps=0, num_samples=10_000, sampler='', num_components=10,
      k=5, kid_subsets=100, kid_subset_size=1000, seed=0, fit_examples=0))
  config.evals.probe = ml_collections.ConfigDict(dict(
      type='representation', every_steps=0, num_train=10_000, num_test=0, knn_k=10, l2=1e-4))


def _optimizer(learning_rate: float, schedule: str = 'cosine', warmup_steps: int = 500,
               **kwargs) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(dict(name='adam', learning_rate=learning_rate,
                                        schedule=schedule, warmup_steps=warmup_steps,
                                        grad_clip_norm=0.0, **kwargs))


def gan_config() -> ml_collections.ConfigDict:
  """The fields of a GAN run: `gan` (losses, n_critic, EMA), one optimizer per network.

  Defaults are DCGAN's (Radford et al.): non-saturating loss, Adam with lr 2e-4 and
  beta1 0.5 for both networks, constant learning rate.
  """
  config = base_config()
  del config['loss'], config['optimizer'], config['corrupt']
  config.family = 'gan'
  config.batch_size = 128
  config.gan = ml_collections.ConfigDict()
  config.gan.loss = 'non_saturating'  # minimax, non_saturating, hinge, least_squares, wasserstein
  config.gan.penalty = ''  # '', gradient_penalty or r1.
  config.gan.penalty_weight = 0.0
  config.gan.n_critic = 1  # Discriminator updates per generator update.
  # True: the G update reuses the last D update's fakes (one G forward per step); False:
  # it draws fresh latents and generates again.
  config.gan.reuse_fakes = True
  config.gan.ema_decay = 0.999  # Of G's parameters (warmed up); samples use the average.
  # Batch norm: the batches that update D's running statistics (which eval mode uses):
  # 'real_and_fake' or 'real'; and the statistics the EMA generator samples with:
  # 'generator' (the current G's running averages) or 'recompute' (the EMA generator's own,
  # over stats_samples fresh latents).
  config.gan.d_stats = 'real_and_fake'
  config.gan.sample_stats = 'generator'
  config.gan.stats_samples = 1024
  config.gan.info_weight = 1.0  # InfoGAN: weight of the categorical code's term.
  config.gan.info_continuous_weight = 1.0  # InfoGAN: weight of the continuous codes' term.
  # InfoGAN: weights, in D's loss, of Q's categorical posterior on real images spreading
  # evenly over the categories (balance) and being certain (entropy); 0 as published.
  config.gan.real_balance_weight = 0.0
  config.gan.real_entropy_weight = 0.0
  # InfoGAN: weight, in D's loss, of Q keeping each real image's category when the image
  # is transformed (KL between the two posteriors); 0 as published. The transforms: 'shift'
  # (by up to 2 pixels) or 'affine' (also rotation, shear and zoom; jgen/steps/gan.py).
  config.gan.real_consistency_weight = 0.0
  config.gan.real_consistency_transform = 'shift'
  # InfoGAN: train this many restarts (seeds seed, seed + 1, ...) for restart_steps each, and
  # go on from the one whose Q has the most mutual information between training image and
  # category (no labels; jgen/restarts.py). 0: one run, as published.
  config.gan.restarts = 0
  config.gan.restart_steps = 1000
  # Two-timescale updates (TTUR): each network has its own learning rate and betas.
  config.g_optimizer = _optimizer(2e-4, 'constant', 0, b1=0.5, b2=0.999, eps=1e-8)
  config.d_optimizer = _optimizer(2e-4, 'constant', 0, b1=0.5, b2=0.999, eps=1e-8)
  config.num_image_examples = 64
  return config


def vae_config() -> ml_collections.ConfigDict:
  """The fields of a VAE run: `vae` (KL weight and warm-up, binarisation, evaluation)."""
  config = base_config()
  del config['loss'], config['corrupt']  # The VAE's loss is its negative ELBO.
  config.family = 'vae'
  config.vae = ml_collections.ConfigDict()
  config.vae.beta = 1.0  # Weight of the KL term (beta-VAE; 1 is the ELBO).
  config.vae.kl_warmup_steps = 0  # Ramp the KL weight up from 0 over these steps (0: none).
  config.vae.binarize = False  # Dynamic binarisation: sample binary pixels every step.
  # k of the importance-sampled bound on -log p(x): the final evaluation (results.json and
  # --mode=eval), and the periodic evaluations during training.
  config.vae.importance_samples = 5000
  config.vae.eval_importance_samples = 100
  config.vae.importance_chunk = 50  # Samples decoded at a time (memory, not the result).
  return config


def classifier_config() -> ml_collections.ConfigDict:
  """The fields of a feature-classifier run (`jgen.evaluate.features` ships its weights)."""
  config = base_config()
  del config['loss'], config['corrupt']
  config.family = 'classifier'
  config.label_smoothing = 0.0
  config.model.name = 'classifier'
  config.model.features = (32, 64, 128, 64)
  config.model.feature_dim = 128
  config.model.num_classes = 10
  config.model.activation = 'relu'
  config.model.dropout = 0.0
  del config.evals['samples'], config.evals['probe']  # It is what measures the others.
  return config


def _loop_fields(config: ml_collections.ConfigDict) -> None:
  config.log_every_steps = 100
  config.eval_every_steps = 2000
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.async_checkpoints = True
  config.num_image_examples = 16
  # Fine-tuning: a checkpoint item directory (WORKDIR/checkpoints/STEP/default) whose
  # parameters start this run at step 0 with a fresh optimizer ('': none). Resuming is
  # rerunning in the same workdir.
  config.init_checkpoint = ''


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a config to a run of seconds: few steps, small batches, frequent actions.

  The sample and probe evaluations are off (they would double a smoke run's time, and the
  test suite is mostly smoke runs); they keep small sizes for a run that turns them on with
  `--config.evals.samples.every_steps=0 --config.evals.probe.every_steps=0`.
  """
  config.num_train_steps = 20
  config.batch_size = 32
  config.eval_batch_size = 500
  for name in ('optimizer', 'g_optimizer', 'd_optimizer'):
    if name in config and config[name].warmup_steps:
      config[name].warmup_steps = 5
  config.log_every_steps = 5
  config.eval_every_steps = 0
  config.checkpoint_every_steps = 10
  config.num_image_examples = 8
  config.data.test_split += '[:1000]'  # Evaluations on the first 1,000 test examples.
  if 'samples' in config.evals:
    config.evals.samples.every_steps = -1
    config.evals.samples.num_samples = 300
    config.evals.samples.kid_subsets = 10
    config.evals.samples.fit_examples = 2000
  if 'probe' in config.evals:
    config.evals.probe.every_steps = -1
    config.evals.probe.num_train = 500
    config.evals.probe.num_test = 500
  return config


def finish(config: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  """Applies the variant named by `arg` (None or 'smoke') and locks the config."""
  if arg == 'smoke':
    config = smoke(config)
  elif arg:
    raise ValueError(f'unknown config variant {arg!r}; known: smoke')
  config.lock()
  return config
