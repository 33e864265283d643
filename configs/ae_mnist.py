r"""Hinton & Salakhutdinov's deep autoencoder (784-1000-500-250-30) on MNIST.

  python run.py --config configs/ae_mnist.py --workdir runs/ae_mnist
  python run.py --config configs/ae_mnist.py:smoke --workdir /tmp/smoke

The target is the paper's test squared error per image, 3.00 (30-D PCA: 13.87). What was
chosen, and why:

* ReLU units and AdamW instead of logistic units with RBM pretraining: logistic units
  without pretraining stall near 14 (measured by the issue's author).
* BCE loss on pixels in [0, 1]: the seed's cross-entropy, and the paper's loss for MNIST.
* Random translations of up to 1 pixel (`augment.max_shift`), the regulariser that makes
  3.00 reachable. Without regularisation this model overfits (the issue measured train 2.23
  vs test 3.23 after 40 epochs). Bare-script runs here, test vs train squared error on
  10k images each: dropout 0.1 on encoder hidden units, 30 epochs, 4.34 vs 3.36; dropout
  0.1 on the input pixels, 30 epochs, 3.49 vs 2.69; Gaussian noise (sigma 1) on the code,
  20 epochs, 4.29 vs 2.96; a random 1-pixel shift (one per batch), 20 epochs, 3.64 vs 3.53.
  Only the shift closed the gap, so longer training pays off instead of overfitting.
* The default: 108,000 steps of batch 32 (3.46M examples, 58 epochs), AdamW at 7e-4 after
  500 warm-up steps, falling in a straight line to 0, weight decay 0.02: test error **2.351**
  (seed 0; 4.45, 3.09 and 2.53 after 0.58M, 1.73M and 2.88M examples), the target being at
  most 2.40 within 3.5M. Its training took 85 minutes on the 2-core CPU shared with two other
  runs; the same steps with Adam took 34 minutes alone (run m below). Weight decay 0.08:
  2.374. Without weight decay (Adam, run m): 2.416. docs/performance.md has the table.
* The earlier default, `unlocked_config` (what compare_mnist.py, the swap-losses notebook
  and the bench suite pin): 36,000 steps of batch 128 (77 epochs, 4.6M examples), Adam 1e-3,
  cosine: 11.3 minutes of training on a 2-core CPU, test error 2.43 (2.86 after 2.6M
  examples, 2.45 after 4.1M). A 45,000-step run reached 2.34 but took 20.6 minutes (before
  steps that log nothing skipped their metrics).
* On the way to the default, runs of seed 0 with Adam, each a `--config.*` override of the
  earlier default, test error after about 3.46M examples unless said:
  - batch 256, lr 2e-3: 2.61; batch 128, lr 2e-3: 2.51; batch 64: lr 2e-3 2.80 after 2.6M
    (stopped), lr 1e-3 2.47, lr 7e-4 (3.49M) 2.49;
  - shifting only some images (`augment.shift_prob`; batch 256, lr 2e-3): 0.5 2.69, 0.25
    2.90, against 2.61 for all; a 2-pixel shift (`augment.max_shift=2`; batch 64, lr 1e-3):
    3.36 after 1.75M (stopped; 3.08 with 1 pixel);
  - a straight-line decay to 0 (`optimizer.schedule=linear`) instead of the cosine (batch
    64, lr 1e-3): 2.444; the same with the last 10% of the steps unshifted
    (`augment.shift_until=0.9`): 2.443; batch 32, lr 7e-4, linear: 2.416, the best with
    Adam (run m); batch 24, lr 5e-4, linear (3.46M): 2.419;
  - with an average of the parameters (`optimizer.ema_decay=0.9995`; batch 32, lr 7e-4,
    linear): 2.715 after 1.73M examples (without: 3.103), but level at the end, 2.415.
  More updates per example helped most (small batches run slower per example on this CPU:
  batch 64, about 65 steps/s, 14 minutes for 54,000 steps; batch 32, about 53 steps/s, 34
  minutes for 108,000), and weight decay took batch 32 below the target.
"""

from configs import common


def unlocked_config():
  config = common.base_config()
  config.data.name = 'mnist'
  config.num_train_steps = 36_000
  config.batch_size = 128
  config.log_every_steps = 500
  config.eval_every_steps = 4000
  config.checkpoint_every_steps = 2000
  config.augment.max_shift = 1

  config.model.name = 'mlp_autoencoder'
  config.model.hidden_sizes = (1000, 500, 250)
  config.model.latent_dim = 30
  config.model.activation = 'relu'
  config.model.dropout = 0.0
  config.loss = 'bce'
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = 'cosine'
  config.optimizer.warmup_steps = 500
  return config


def get_config(arg=None):
  """The recipe above (batch 32, AdamW); `unlocked_config`, the base of the other autoencoder
  configs, keeps the earlier batch-128 Adam recipe that compare_mnist.py, the swap-losses
  notebook and the bench suite pin."""
  config = unlocked_config()
  config.batch_size = 32
  config.num_train_steps = 108_000
  config.eval_every_steps = 18_000
  config.checkpoint_every_steps = 6_000
  config.optimizer.name = 'adamw'
  config.optimizer.learning_rate = 7e-4
  config.optimizer.schedule = 'linear'
  # Decoupled weight decay (optax.adamw): each update also subtracts lr * 0.02 * params.
  # 0 is Adam's update exactly.
  config.optimizer.weight_decay = 0.02
  return common.finish(config, arg)
