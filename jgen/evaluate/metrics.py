"""Sample-quality metrics on the features and class probabilities of a classifier.

Every function takes numpy features (N, D) or probabilities (N, K) and computes in float64.
The features come from the dataset's own classifier (`jgen.evaluate.features`), so these are
not Inception-based numbers (FID, KID as usually published) and are not comparable with them:
they are the same formulas in another feature space, comparable between jgen runs.

* `frechet_distance`: between Gaussians fitted to the two feature sets (Heusel et al. 2017).
* `kernel_distance`: KID (Binkowski et al. 2018), the unbiased MMD^2 estimate with the cubic
  polynomial kernel, mean and standard deviation over random subsets.
* `prdc`: precision, recall, density and coverage (Naeem et al. 2020) with k nearest neighbours.
* `class_statistics`: how the classifier sees the samples: their class histogram against the
  reference class frequencies, mean confidence, and the classifier score.
"""

import numpy as np

_CHUNK = 1024  # Rows of a distance matrix computed at a time (memory, not the result).


def gaussian_moments(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean (D,) and unbiased covariance (D, D) of features (N, D), in float64."""
  x = np.asarray(features, np.float64)
  return x.mean(axis=0), np.cov(x, rowvar=False)


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray,
                     cov2: np.ndarray) -> float:
  """The Frechet (2-Wasserstein) distance squared between N(mean1, cov1) and N(mean2, cov2).

  |mean1 - mean2|^2 + tr(cov1 + cov2 - 2 (cov1 cov2)^(1/2)); the trace of the square root is
  taken through the symmetric matrix cov1^(1/2) cov2 cov1^(1/2), which has the same
  eigenvalues as cov1 cov2 and a stable eigendecomposition.
  """
  values, vectors = np.linalg.eigh(cov1)
  root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
  middle = root1 @ cov2 @ root1
  trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()
  diff = mean1 - mean2
  return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * trace_root)


def frechet_distance_of(features1: np.ndarray, features2: np.ndarray) -> float:
  """The Frechet distance between Gaussians fitted to two feature sets."""
  return frechet_distance(*gaussian_moments(features1), *gaussian_moments(features2))


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
  k = x @ y.T / x.shape[1] + 1.0
  return k * k * k  # Products: numpy's power with a float exponent is many times slower.


def kernel_distance(features1: np.ndarray, features2: np.ndarray, *, num_subsets: int = 100,
                    subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
  """KID: the unbiased MMD^2 estimate with kernel (x.y / D + 1)^3, over random subsets.

  Each subset draws `subset_size` rows (at most the smaller set's size) of each set without
  replacement; returns the mean and the standard deviation of the subsets' estimates.
  """
  x, y = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
  m = min(subset_size, len(x), len(y))
  rng = np.random.default_rng(seed)
  estimates = []
  for _ in range(num_subsets):
    a = x[rng.choice(len(x), m, replace=False)]
    b = y[rng.choice(len(y), m, replace=False)]
    kxx, kyy, kxy = _polynomial_kernel(a, a), _polynomial_kernel(b, b), _polynomial_kernel(a, b)
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    estimates.append(within - 2 * kxy.mean())
  return float(np.mean(estimates)), float(np.std(estimates))


def _distances(x: np.ndarray, y: np.ndarray, y_sq: np.ndarray) -> np.ndarray:
  """Euclidean distances between rows of x and rows of y (float64)."""
  sq = (x * x).sum(1)[:, None] - 2 * x @ y.T + y_sq[None, :]
  return np.sqrt(np.clip(sq, 0, None))


def kth_neighbour_radii(features: np.ndarray, k: int) -> np.ndarray:
  """Distance from each row to its k-th nearest other row (N,)."""
  x = np.asarray(features, np.float64)
  x_sq = (x * x).sum(1)
  radii = []
  for lo in range(0, len(x), _CHUNK):
    d = _distances(x[lo:lo + _CHUNK], x, x_sq)
    radii.append(np.partition(d, k, axis=1)[:, k])  # Column 0 of the order is the row itself.
  return np.concatenate(radii)


def prdc(real: np.ndarray, fake: np.ndarray, *, k: int = 5,
         real_radii: np.ndarray | None = None) -> dict[str, float]:
  """Precision, recall, density and coverage of `fake` against `real` (Naeem et al. 2020).

  A point lies in another's ball when it is strictly closer than that point's k-th nearest
  neighbour in its own set (as the authors' code decides). `real_radii` may be passed to
  reuse the real set's radii.

  Returns:
    precision: share of fakes inside some real ball; recall: share of reals inside some fake
    ball; density: real balls holding each fake, divided by k, averaged; coverage: share of
    real balls holding at least one fake.
  """
  real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
  if real_radii is None:
    real_radii = kth_neighbour_radii(real, k)
  fake_radii = kth_neighbour_radii(fake, k)
  fake_sq = (fake * fake).sum(1)
  in_real_balls = np.zeros(len(fake), np.int64)  # For each fake: how many real balls hold it.
  recalled, covered = 0, 0
  for lo in range(0, len(real), _CHUNK):
    d = _distances(real[lo:lo + _CHUNK], fake, fake_sq)  # (real chunk, fakes)
    radii = real_radii[lo:lo + _CHUNK, None]
    in_real_balls += (d < radii).sum(0)
    recalled += int((d < fake_radii[None, :]).any(1).sum())
    covered += int((d.min(1) < radii[:, 0]).sum())
  return {'precision': float((in_real_balls > 0).mean()), 'recall': recalled / len(real),
          'density': float(in_real_balls.mean() / k), 'coverage': covered / len(real)}


def class_statistics(probs: np.ndarray, reference: np.ndarray, *,
                     covered_share: float = 0.1) -> dict[str, float]:
  """How a classifier sees samples, against the reference class frequencies.

  Args:
    probs: the classifier's class probabilities of each sample (N, K).
    reference: the reference frequency of each class (K,), e.g. the test set's.
    covered_share: a class is covered when its share of the samples is at least this
      fraction of its reference frequency.

  Returns:
    class_kl: KL(sample class histogram || reference), in nats (0 when they match);
    classes_covered: how many classes are covered;
    class_max_deviation: the largest |share / reference - 1| over classes;
    confidence: the mean of each sample's largest class probability;
    classifier_score: exp(E_x KL(p(y|x) || p(y))), the Inception score's formula on this
      classifier (at most K; high when samples are confident and varied).
  """
  probs = np.asarray(probs, np.float64)
  reference = np.asarray(reference, np.float64)
  share = np.bincount(probs.argmax(1), minlength=probs.shape[1]) / len(probs)
  held = share > 0
  tiny = np.finfo(np.float64).tiny  # 0 log 0 = 0: a zero probability adds nothing.
  log_ratio = np.log(np.maximum(probs, tiny)) - np.log(np.maximum(probs.mean(0), tiny))[None]
  pointwise = np.where(probs > 0, probs * log_ratio, 0.0)
  return {
      'class_kl': float((share[held] * np.log(share[held] / reference[held])).sum()),
      'classes_covered': int((share >= covered_share * reference).sum()),
      'class_max_deviation': float(np.abs(share / reference - 1).max()),
      'confidence': float(probs.max(1).mean()),
      'classifier_score': float(np.exp(pointwise.sum(1).mean())),
  }


def sample_metrics(fake_features: np.ndarray, fake_probs: np.ndarray, real_features: np.ndarray,
                   reference_classes: np.ndarray, *, k: int = 5,
                   real_radii: np.ndarray | None = None, kid_subsets: int = 100,
                   kid_subset_size: int = 1000) -> dict[str, float]:
  """Every metric of this module for one set of samples against one real set.

  Returns:
    frechet, kid, kid_std, precision, recall, density, coverage, and the class statistics.
  """
  kid, kid_std = kernel_distance(fake_features, real_features, num_subsets=kid_subsets,
                                 subset_size=kid_subset_size)
  return ({'frechet': frechet_distance_of(fake_features, real_features), 'kid': kid,
           'kid_std': kid_std}
          | prdc(real_features, fake_features, k=k, real_radii=real_radii)
          | class_statistics(fake_probs, reference_classes))
