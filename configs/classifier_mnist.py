r"""The feature classifier of MNIST's sample metrics (weights shipped in jgen/evaluate/weights).

  python run.py --config configs/classifier_mnist.py --workdir runs/classifier_mnist
  python -m jgen.evaluate.features export --config configs/classifier_mnist.py \
      --workdir runs/classifier_mnist
  make classifiers   # both datasets: train, then export into the package

Four 3x3 convolutions (32, 64, 128, 64 channels; all but the first stride 2), a 128-unit
feature layer, dropout, random shifts of up to 2 pixels, Adam with a cosine schedule.
"""

from configs import common


def unlocked_config(dataset: str = 'mnist'):
  config = common.classifier_config()
  config.data.name = dataset
  config.num_train_steps = 3000  # 6.4 epochs of batch 128.
  config.batch_size = 128
  config.augment.max_shift = 2
  config.model.dropout = 0.25
  config.optimizer.learning_rate = 2e-3
  config.optimizer.warmup_steps = 200
  config.log_every_steps = 250
  config.eval_every_steps = 1000
  config.checkpoint_every_steps = 1000
  return config


def get_config(arg=None):
  return common.finish(unlocked_config(), arg)
