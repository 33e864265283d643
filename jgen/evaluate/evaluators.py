"""Evaluators named in the config, one registry for every model family.

A config lists its evaluators under `config.evals`, big_vision's way: each entry has a
`type` (a name registered here), `every_steps` and the evaluator's own options:

  config.evals.samples = dict(type='sample_quality', every_steps=0, num_samples=10_000)

`every_steps`: N > 0 also runs it every N training steps; 0 only at the end of training and
in `--mode eval`; -1 never. Results are keyed `ENTRY_metric` (`samples_frechet`). An entry
whose evaluator does not apply to the model (no samples, no encoder, no feature classifier
for the dataset) is skipped with one log line saying why.

Types:
  test_split: the family's own eval step over the whole test split (losses, reconstruction
    error, the VAE's bound, InfoGAN's code accuracy); the last evaluation uses the family's
    final eval step (a VAE's bound with more importance samples).
  sample_quality: `jgen.evaluate.metrics` on the dataset's shipped classifier's features of
    `num_samples` samples against as many test images, each beside its floor: the same
    metric for as many real training images against the same test images.
  representation: linear-probe and k-NN accuracy of each of the task's `feature_steps`,
    fitted on `num_train` training images and scored on the test split.
  mode_coverage: on a registered mixture dataset (`ring8`), the modes a model's samples
    cover and the fraction of them near a mode.
"""

import dataclasses
from collections.abc import Callable

import jax
import numpy as np
from absl import logging

from jgen import data, parallel
from jgen.evaluate import evaluate, features, metrics, probe, sampling
from jgen.registry import ConfigError, Registry

EVALUATORS = Registry('evaluator')


class TestSplit:
  """The family's eval step over the test split."""

  def __init__(self):
    self._compiled = {}

  def skip_reason(self, s) -> str | None:
    del s
    return None

  def __call__(self, s, state, *, final: bool) -> dict[str, float]:
    step = (s.task.final_eval_step or s.task.eval_step) if final else s.task.eval_step
    if step not in self._compiled:
      self._compiled[step] = parallel.data_parallel(step, s.mesh)
    batches = data.eval_batches(s.source, split=s.config.data.test_split,
                                global_batch_size=s.config.eval_batch_size,
                                process_index=jax.process_index(),
                                process_count=jax.process_count())
    return evaluate(self._compiled[step], state, batches, s.mesh, s.task.summarize)


@dataclasses.dataclass
class _Reference:
  """What sample metrics compare against, computed once per dataset and size."""

  test_features: np.ndarray
  test_radii: np.ndarray
  class_frequencies: np.ndarray
  floor: dict[str, float]
  k: int
  kid: dict


class SampleQuality:
  """Sample metrics on the shipped classifier's features, beside their real-vs-real floor.

  Args:
    num_samples: samples drawn, and test (and training) images they are compared with.
    sampler: '' (the model's default: its prior, or a GMM fitted to an autoencoder's
      training codes), 'prior', 'gaussian' or 'gmm'.
    num_components: of the 'gmm' sampler.
    fit_examples: training images whose codes the 'gaussian' or 'gmm' density is fitted to
      (the split's first ones; 0: all).
    k: nearest neighbours of precision, recall, density and coverage.
    kid_subsets, kid_subset_size: KID's random subsets.
    seed: of the samples (the same every evaluation, so curves compare like with like).
  """

  _references: dict = {}  # (dataset, split names, size, k) -> _Reference, per process.

  def __init__(self, num_samples: int = 10_000, sampler: str = '', num_components: int = 10,
               k: int = 5, kid_subsets: int = 100, kid_subset_size: int = 1000, seed: int = 0,
               fit_examples: int = 0):
    if num_samples <= k:
      raise ConfigError(f'sample_quality num_samples={num_samples} must exceed k={k}')
    self.num_samples, self.sampler, self.num_components = num_samples, sampler, num_components
    self.k, self.seed, self.fit_examples = k, seed, fit_examples
    self.kid = {'kid_subsets': kid_subsets, 'kid_subset_size': kid_subset_size}

  def skip_reason(self, s) -> str | None:
    task = s.task
    if task.sample_inputs is None and task.encode_step is None:
      return 'the model draws no samples'
    if s.config.data.name not in features.available():
      return (f'no feature classifier ships for {s.config.data.name!r} (known: '
              f'{", ".join(features.available())})')
    return None

  def __call__(self, s, state, *, final: bool) -> dict[str, float]:
    del final
    c = s.config.data
    net = features.FeatureNet(c.name)
    key = (c.name, c.data_dir, c.train_split, c.test_split, self.num_samples, self.k)
    if key not in self._references:
      self._references[key] = sample_reference(
          s.source, net, train_split=c.train_split, test_split=c.test_split,
          num_samples=self.num_samples, k=self.k, **self.kid)
    sampler = sampling.check_sampler(s.task, self.sampler, s.config.family)
    samples = sampling.draw(s, state, self.num_samples, sampler=sampler, seed=self.seed,
                            num_components=self.num_components, fit_examples=self.fit_examples)
    return score_samples(samples, net, self._references[key])


def sample_reference(source: data.Source, net: features.FeatureNet, *,
                     train_split: str = 'train', test_split: str = 'test',
                     num_samples: int = 10_000, k: int = 5, kid_subsets: int = 100,
                     kid_subset_size: int = 1000) -> _Reference:
  """What samples are scored against: the first `num_samples` test images' features, and
  the floor (the same metrics for as many real training images)."""
  test_images, test_labels = data.split_images(source, test_split, num_samples)
  train_images, _ = data.split_images(source, train_split, num_samples)
  test_features, _ = net(test_images)
  train_features, train_probs = net(train_images)
  radii = metrics.kth_neighbour_radii(test_features, k)
  frequencies = np.bincount(test_labels, minlength=train_probs.shape[1]) / len(test_labels)
  kid = {'kid_subsets': kid_subsets, 'kid_subset_size': kid_subset_size}
  floor = metrics.sample_metrics(train_features, train_probs, test_features, frequencies, k=k,
                                 real_radii=radii, **kid)
  return _Reference(test_features, radii, frequencies, floor, k, kid)


def score_samples(samples: np.ndarray, net: features.FeatureNet,
                  ref: _Reference) -> dict[str, float]:
  """Sample metrics of `samples` (N, H, W, C) in [0, 1], each floor (`floor_NAME`) and the
  Frechet distance as a multiple of its floor; any generator's samples (bench/ scores a
  PyTorch DCGAN's with it)."""
  sample_features, sample_probs = net(samples)
  out = metrics.sample_metrics(sample_features, sample_probs, ref.test_features,
                               ref.class_frequencies, k=ref.k, real_radii=ref.test_radii,
                               **ref.kid)
  return out | {f'floor_{k}': v for k, v in ref.floor.items()} | {
      'frechet_vs_floor': out['frechet'] / ref.floor['frechet']}


class Representation:
  """Linear-probe and k-NN accuracy of the task's representations.

  Args:
    num_train: training images the probes are fitted on (the split's first ones).
    num_test: test images they are scored on (the split's first ones; 0: all).
    knn_k: neighbours of the k-NN vote.
    l2: the linear probe's weight penalty.
  """

  def __init__(self, num_train: int = 10_000, num_test: int = 0, knn_k: int = 10,
               l2: float = 1e-4):
    if num_train < knn_k or num_test < 0:
      raise ConfigError(f'representation num_train={num_train} must be at least knn_k={knn_k}'
                        f' and num_test={num_test} at least 0')
    self.num_train, self.num_test, self.knn_k, self.l2 = num_train, num_test, knn_k, l2

  def skip_reason(self, s) -> str | None:
    if not s.task.feature_steps:
      return 'the model has no representation to probe'
    if not s.info.num_classes:
      return f'{s.config.data.name!r} has no labels'
    return None

  def __call__(self, s, state, *, final: bool) -> dict[str, float]:
    del final
    c = s.config.data
    train_images, train_labels = data.split_images(s.source, c.train_split, self.num_train)
    test_images, test_labels = data.split_images(s.source, c.test_split, self.num_test or None)
    out = {}
    for name, fn in s.task.feature_steps.items():
      train_x = sampling.apply_rows(s, fn, state, train_images).reshape(len(train_images), -1)
      test_x = sampling.apply_rows(s, fn, state, test_images).reshape(len(test_images), -1)
      out[f'{name}_linear'] = probe.linear_probe_accuracy(train_x, train_labels, test_x,
                                                          test_labels, l2=self.l2)
      out[f'{name}_knn'] = probe.knn_accuracy(train_x, train_labels, test_x, test_labels,
                                              k=self.knn_k)
    return out


class ModeCoverage:
  """Covered modes, high-quality fraction and mode KL (`jgen.data.registered.mode_coverage`)
  of `num_samples` samples of a model of a registered mixture dataset (`ring8`).

  Args:
    num_samples: samples drawn (from the prior; a GMM of the codes for an autoencoder).
    radius_in_std: a sample within this many standard deviations of a mode is good.
    min_share: a mode is covered by at least this share of its fair N / K good samples.
    seed: of the samples (the same every evaluation).
  """

  def __init__(self, num_samples: int = 2500, radius_in_std: float = 3.0,
               min_share: float = 0.25, seed: int = 0):
    self.num_samples, self.radius_in_std = num_samples, radius_in_std
    self.min_share, self.seed = min_share, seed

  def skip_reason(self, s) -> str | None:
    dataset = data.registered.get(s.config.data.name)
    if dataset is None or dataset.modes is None:
      return f'{s.config.data.name!r} is not a registered dataset with known modes'
    if s.task.sample_inputs is None and s.task.encode_step is None:
      return 'the model draws no samples'
    return None

  def __call__(self, s, state, *, final: bool) -> dict[str, float]:
    del final
    dataset = data.registered.get(s.config.data.name)
    sampler = sampling.check_sampler(s.task, '', s.config.family)
    samples = sampling.draw(s, state, self.num_samples, sampler=sampler, seed=self.seed)
    return data.registered.mode_coverage(samples, dataset.modes, dataset.mode_std,
                                         self.radius_in_std, self.min_share)


EVALUATORS.register('test_split')(TestSplit)
EVALUATORS.register('mode_coverage')(ModeCoverage)
EVALUATORS.register('sample_quality')(SampleQuality)
EVALUATORS.register('representation')(Representation)
EVALUATORS.freeze()


@dataclasses.dataclass
class Entry:
  """One configured evaluator."""

  name: str
  every_steps: int
  evaluator: Callable

  def due(self, step: int, final: bool) -> bool:
    return self.every_steps >= 0 and (final or (self.every_steps > 0
                                                and step % self.every_steps == 0))


def build(config) -> list[Entry]:
  """The config's evaluators, in the config's order.

  Raises:
    ConfigError: for an unknown type, an option the type does not take, or a bad value.
  """
  entries = []
  for name, options in config.evals.items():
    options = dict(options)
    kind = EVALUATORS.get(options.pop('type', ''))
    every = options.pop('every_steps', 0)
    if every < -1:
      raise ConfigError(f'evals.{name}.every_steps={every} must be -1 (never), 0 (at the end) '
                        'or a positive number of steps')
    try:
      entries.append(Entry(name, every, kind(**options)))
    except TypeError as e:
      raise ConfigError(f'evals.{name} ({kind.__name__}) rejects its options: {e}') from None
  return entries


def check(config) -> None:
  """Builds the config's evaluators to check their names and options; raises ConfigError."""
  build(config)


def run(entries: list[Entry], s, state, *, step: int, final: bool, skipped: set | None = None,
        sep: str = '_') -> dict[str, float]:
  """Runs the entries due at `step` that apply to the task; {ENTRY + sep + metric: value}.

  `skipped` collects the names of entries already reported as not applying, so that each
  is reported once per run.
  """
  skipped = set() if skipped is None else skipped
  results = {}
  for entry in entries:
    if not entry.due(step, final):
      continue
    reason = entry.evaluator.skip_reason(s)
    if reason:
      if entry.name not in skipped:
        logging.info('Evaluator %s skipped: %s', entry.name, reason)
        skipped.add(entry.name)
      continue
    out = entry.evaluator(s, state, final=final)
    results |= {f'{entry.name}{sep}{k}': v for k, v in out.items()}
  return results
