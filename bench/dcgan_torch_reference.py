r"""PyTorch's DCGAN recipe on jgen's MNIST DCGAN, scored with jgen's sample metrics.

  pip install -e '.[bench]'
  python bench/dcgan_torch_reference.py --steps=3000 --seeds=0,1,2

The reference that configs/dcgan_mnist.py's sample quality is held against: the same
architecture (bench/torch_models.py), trained the way PyTorch's DCGAN example trains it
(Radford et al.'s initialisation; per step D on a real batch, D on a detached fake batch,
then G through D; BCE-with-logits, Adam 2e-4 with beta1 0.5; no weight averaging), on the
same MNIST training split in jgen's batch order (jgen.data's stream for the seed), for the
same number of training examples (steps x 128). Each seed's 10,000 samples (generator in
training mode, as the example samples it, batches of 500) are scored exactly as jgen scores
its own: the shipped classifier's features against the test split, beside the
real-vs-real floor. Prints one row per seed and the mean, spread and count within 5x.
"""

import pathlib
import statistics
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np
import torch_models
from absl import app, flags

from jgen import data
from jgen.evaluate import evaluators, features

_STEPS = flags.DEFINE_integer('steps', 3000, 'Training steps of batch 128.')
_SEEDS = flags.DEFINE_list('seeds', ['0', '1', '2'], 'Seeds (data order and torch).')
_SAMPLES = flags.DEFINE_integer('num_samples', 10_000, 'Samples scored per seed.')
_BATCH = 128
_NOISE = 100


def train_and_sample(source, seed: int, steps: int, num_samples: int) -> np.ndarray:
  """Trains one seed; returns its samples as (N, 28, 28, 1) float images in [0, 1]."""
  import torch

  torch.manual_seed(seed)
  g, d = torch_models.dcgan(_NOISE, dcgan_init=True)
  opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
  opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
  bce = torch.nn.BCEWithLogitsLoss()
  ones, zeros = torch.ones(_BATCH, 1), torch.zeros(_BATCH, 1)
  batches = data.train_batches(source, split='train', global_batch_size=_BATCH, seed=seed)
  for _ in range(steps):
    real = torch.from_numpy(next(batches)['image'].transpose(0, 3, 1, 2) * 2 - 1)
    d.zero_grad()
    bce(d(real), ones).backward()
    fake = g(torch.randn(_BATCH, _NOISE))
    bce(d(fake.detach()), zeros).backward()
    opt_d.step()
    g.zero_grad()
    bce(d(fake), ones).backward()
    opt_g.step()
  out = []
  with torch.no_grad():
    for _ in range(0, num_samples, 500):
      out.append(g(torch.randn(500, _NOISE)).numpy())
  images = np.concatenate(out)[:num_samples].transpose(0, 2, 3, 1)
  return (images + 1) / 2


def main(argv):
  del argv
  import torch

  source = data.load('mnist', download=False)
  net = features.FeatureNet('mnist')
  ref = evaluators.sample_reference(source, net, num_samples=_SAMPLES.value)
  print(f'torch {torch.__version__}, {torch.get_num_threads()} threads; {_STEPS.value} steps '
        f'of {_BATCH} ({_STEPS.value * _BATCH} examples); floor frechet '
        f'{ref.floor["frechet"]:.3f}')
  rows = []
  for seed in map(int, _SEEDS.value):
    t = time.time()
    samples = train_and_sample(source, seed, _STEPS.value, _SAMPLES.value)
    seconds = time.time() - t
    r = evaluators.score_samples(samples, net, ref)
    rows.append(r)
    print(f'seed {seed}: frechet {r["frechet"]:.2f} ({r["frechet_vs_floor"]:.1f}x floor), '
          f'classes {r["classes_covered"]:.0f}, worst class deviation '
          f'{r["class_max_deviation"]:.2f}, recall {r["recall"]:.3f}, '
          f'precision {r["precision"]:.3f}, '
          f'{seconds / 60:.1f} min', flush=True)
  ratios = [r['frechet_vs_floor'] for r in rows]
  spread = statistics.stdev(ratios) if len(ratios) > 1 else float('nan')
  print(f'frechet / floor: mean {statistics.mean(ratios):.1f} +- {spread:.1f} over '
        f'{len(ratios)} seeds; within 5x: {sum(x <= 5 for x in ratios)}/{len(ratios)}; '
        f'every class within 25%: '
        f'{sum(r["class_max_deviation"] <= 0.25 for r in rows)}/{len(rows)}')


if __name__ == '__main__':
  app.run(main)
