r"""Which digits an InfoGAN's categorical code mixes, and along which style it splits them.

  python bench/infogan_confusion.py runs/study.jsonl.seed2.partial [more .partial files]

Reads the train state an unfinished seed of `bench/infogan_seeds.py --out` keeps
(FILE.seed<N>.partial, written at every evaluation) and, on the MNIST test set, prints:

* the digit x category table, in 1/1000 of each digit's images, the categories in the
  order of the best one-to-one mapping (the one `code_accuracy` scores), so the diagonal is
  each digit's share in its own category;
* for every digit that no one category holds 90% of, each category taking at least 30 of its
  images, with their mean ink (sum of pixel values), slant (covariance of row and column over
  the variance of the row, weighted by the ink: 0 upright, negative leaning right, as most
  handwriting does, positive leaning left) and height (the rows' standard deviation).

A code that splits one digit between two categories by slant, where each category takes
the other digit's images of the same slant, has found a style, not the digits.
The state's network must be the config's (`--config`, any `--config.model.*` override);
the loss weights play no part here.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # For configs/.

import jax
import numpy as np
import scipy.optimize
from absl import app
from flax import serialization
from ml_collections import config_flags

from jgen import data, models, parallel, runtime, steps
from jgen.steps import gan


def categories(discriminator, state, images: np.ndarray) -> np.ndarray:
  """Q's most likely category of each image (N, H, W, 1) in [0, 1], D in eval mode."""
  out = [gan._apply(discriminator, state.d_params, state.d_batch_stats,
                    images[i:i + 1000] * 2.0 - 1.0, train=False)[0]['code_logits']
         for i in range(0, len(images), 1000)]
  return np.asarray(np.concatenate(out)).argmax(-1)


def styles(images: np.ndarray) -> np.ndarray:
  """(ink, slant, height) of each image (N, H, W, 1): the sum of its pixels, the covariance
  of row and column over the variance of the row, and the rows' standard deviation, all
  weighted by the pixel values."""
  m = images[..., 0]
  rows, cols = np.meshgrid(np.arange(m.shape[1]), np.arange(m.shape[2]), indexing='ij')
  ink = m.sum((1, 2))
  def mean(f):
    return (m * f).sum((1, 2)) / ink
  r, c = mean(rows), mean(cols)
  dr, dc = rows - r[:, None, None], cols - c[:, None, None]
  var_r = mean(dr ** 2)
  return np.stack([ink, mean(dr * dc) / var_r, np.sqrt(var_r)], -1)


def main(argv):
  if len(argv) < 2:
    raise app.UsageError('give one or more .partial files of bench/infogan_seeds.py --out')
  runtime.set_cpu_defaults()
  config = _CONFIG.value  # noqa: F821  (defined below, when run as a script)
  source = data.load(config.data.name, config.data.data_dir or None,
                     download=config.data.download)
  x, y = source.arrays(config.data.test_split)
  x, y = np.asarray(x, np.float32) / 255.0, np.asarray(y)
  task = steps.build_task(config, x.shape[1:])
  model = models.build_model(**config.model, image_shape=x.shape[1:], axis_name=parallel.AXIS)
  target = task.init_state(jax.random.PRNGKey(0))
  k = config.model.categories
  for path in argv[1:]:
    with np.load(path) as f:
      state = serialization.from_bytes(target, f['state'].tobytes())
    code = categories(model.discriminator, state, x)
    counts = np.zeros((10, k))
    np.add.at(counts, (y, code), 1)
    digits, order = scipy.optimize.linear_sum_assignment(counts, maximize=True)
    table = counts[:, order]  # Column j: the category mapped to digit j.
    print(f'{path}: code accuracy {gan.code_accuracy(counts):.4f}; digit x category '
          '(per mille of the digit; category j is the one mapped to digit j)')
    for d in digits:
      print(f'  {d}: ' + ' '.join(f'{v:4.0f}' for v in 1000 * table[d] / table[d].sum()))
    style = styles(x)
    for d in digits:
      if table[d].max() >= 0.9 * table[d].sum():
        continue
      for j in np.argsort(-table[d]):
        chosen = (y == d) & (code == order[j])
        if chosen.sum() < 30:
          break
        ink, slant, height = style[chosen].mean(0)
        print(f'  digit {d} in category {j}: {chosen.sum():4d} images, ink {ink:5.1f}, '
              f'slant {slant:+.3f}, height {height:.2f}')


if __name__ == '__main__':  # The flag only here: tests import `styles` alone.
  _CONFIG = config_flags.DEFINE_config_file('config', 'configs/infogan_mnist.py')
  app.run(main)
