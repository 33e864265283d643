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

  config.data = ml_collections.ConfigDict()
  config.data.name = 'mnist'
  config.data.data_dir = ''  # Empty: TFDS's default ($TFDS_DATA_DIR or ~/tensorflow_datasets).
  config.data.train_split = 'train'
  config.data.test_split = 'test'
  config.data.shuffle_buffer = 0  # 0: shuffle the whole split every epoch.
  config.data.download = True  # May TFDS try its own download before offline sources?

  config.augment = ml_collections.ConfigDict()
  config.augment.max_shift = 0  # Random translation of training images, in pixels.

  config.model = ml_collections.ConfigDict()
  config.loss = 'bce'

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = 'adam'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = 'cosine'
  config.optimizer.warmup_steps = 500
  config.optimizer.grad_clip_norm = 0.0

  config.log_every_steps = 100
  config.eval_every_steps = 2000
  config.checkpoint_every_steps = 1000
  config.keep_checkpoints = 3
  config.async_checkpoints = True
  config.num_image_examples = 16
  config.init_checkpoint = ''
  return config


def smoke(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Shrinks a config to a run of seconds: few steps, small batches, frequent actions."""
  config.num_train_steps = 20
  config.batch_size = 32
  config.eval_batch_size = 500
  config.optimizer.warmup_steps = 5
  config.log_every_steps = 5
  config.eval_every_steps = 0
  config.checkpoint_every_steps = 10
  config.num_image_examples = 8
  return config


def finish(config: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
  """Applies the variant named by `arg` (None or 'smoke') and locks the config."""
  if arg == 'smoke':
    config = smoke(config)
  elif arg:
    raise ValueError(f'unknown config variant {arg!r}; known: smoke')
  config.lock()
  return config
