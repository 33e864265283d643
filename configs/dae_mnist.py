r"""A denoising autoencoder (Vincent et al., 2008): ae_mnist.py's 784-1000-500-250-30 MLP
trained to reconstruct clean MNIST digits from copies with 25% of their pixels set to 0.

  python run.py --config configs/dae_mnist.py --workdir runs/dae_mnist
  python run.py --config configs/dae_mnist.py:smoke --workdir /tmp/smoke
  python run.py --config configs/dae_mnist.py --workdir runs/ae_masked --config.corrupt.train=False
  python run.py --config configs/dae_mnist.py --workdir runs/x \
      --config.corrupt.name=gaussian --config.corrupt.level=0.5
  python bench/denoising.py     # trains this DAE and the plain AE baseline, prints a table

Evaluation on the test split reports `sq_err_per_image` (clean input, clean target) and
`denoise_sq_err_per_image` (input corrupted the same fixed way for every model, clean
target); `--config.corrupt.train=False` trains the same model on clean inputs (the plain
autoencoder baseline) and still measures both.

What was chosen, and why:

* Masking noise at 25%: a quarter of each digit's pixels (strokes included) set to 0, so a
  model that copies its input is visibly wrong, yet the digit stays recognisable. It is
  within the range of masking levels Vincent et al. tried on MNIST (up to 40%).
* Everything else as in ae_mnist.py (ReLU, Adam, cosine schedule, BCE, 1-pixel random
  shifts; the corruption applies to the shifted image, and the target is the shifted clean
  image), so the DAE and its baseline differ only in their training inputs.
* 10,000 steps of batch 128 (21 epochs) instead of 36,000: a few minutes per run on this
  2-core CPU, for a side-by-side comparison rather than a best figure.
"""

from configs import ae_mnist, common


def get_config(arg=None):
  config = ae_mnist.unlocked_config()  # The same model, loss, optimizer and shifts.
  config.num_train_steps = 10_000
  config.eval_every_steps = 2000
  config.corrupt.name = 'masking'
  config.corrupt.level = 0.25
  config.corrupt.train = True
  return common.finish(config, arg)
