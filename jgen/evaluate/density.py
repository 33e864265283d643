"""Densities fitted to an encoder's codes, so a deterministic autoencoder can sample.

A Gaussian (one component) or a Gaussian mixture with full covariances, fitted by EM in
float64 numpy on the training set's codes; new codes drawn from it are decoded into images.
"""

import dataclasses

import numpy as np
import scipy.linalg
import scipy.special

from jgen.registry import ConfigError


@dataclasses.dataclass(frozen=True)
class GaussianMixture:
  """weights (K,), means (K, D), covariances (K, D, D)."""

  weights: np.ndarray
  means: np.ndarray
  covariances: np.ndarray

  def log_prob(self, x: np.ndarray) -> np.ndarray:
    """log density of each row of x (N, D)."""
    return scipy.special.logsumexp(self._component_log_probs(x), axis=1)

  def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
    """n codes (N, D): a component by its weight, then a draw of that Gaussian."""
    components = rng.choice(len(self.weights), size=n, p=self.weights)
    chol = np.linalg.cholesky(self.covariances)
    noise = rng.standard_normal((n, self.means.shape[1]))
    return self.means[components] + np.einsum('nij,nj->ni', chol[components], noise)

  def _component_log_probs(self, x: np.ndarray) -> np.ndarray:
    """log (weight_k N(x; mean_k, cov_k)), (N, K)."""
    d = x.shape[1]
    out = []
    for weight, mean, cov in zip(self.weights, self.means, self.covariances, strict=True):
      chol = np.linalg.cholesky(cov)
      solved = scipy.linalg.solve_triangular(chol, (x - mean).T, lower=True)  # (D, N)
      log_det = 2.0 * np.log(np.diagonal(chol)).sum()
      out.append(np.log(weight) - 0.5 * (d * np.log(2 * np.pi) + log_det
                                         + np.square(solved).sum(axis=0)))
    return np.stack(out, axis=1)


def fit_gaussian(codes: np.ndarray, reg: float = 1e-6) -> GaussianMixture:
  """The maximum-likelihood Gaussian of `codes` (N, D), as a one-component mixture."""
  codes = np.asarray(codes, np.float64)
  cov = np.cov(codes, rowvar=False, bias=True).reshape(codes.shape[1], codes.shape[1])
  return GaussianMixture(np.ones(1), codes.mean(0, keepdims=True),
                         (cov + reg * np.eye(codes.shape[1]))[None])


def fit_gmm(codes: np.ndarray, num_components: int = 10, *, iterations: int = 100,
            seed: int = 0, reg: float = 1e-6, tol: float = 1e-4) -> GaussianMixture:
  """A Gaussian mixture fitted to `codes` (N, D) by EM, from a k-means++ start.

  `reg` is added to every covariance's diagonal (relative to the codes' overall variance)
  to keep them positive definite; EM stops when the mean log-likelihood improves by less
  than `tol`.
  """
  codes = np.asarray(codes, np.float64)
  n, d = codes.shape
  if not 1 <= num_components <= n:
    raise ConfigError(f'num_components={num_components} must be between 1 and the number '
                      f'of codes ({n})')
  rng = np.random.default_rng(seed)
  floor = reg * codes.var(0).mean() * np.eye(d)
  # k-means++ seeding: each next mean is a code drawn with probability ~ squared distance.
  means = [codes[rng.integers(n)]]
  for _ in range(num_components - 1):
    dist = np.min([np.square(codes - m).sum(1) for m in means], axis=0)
    means.append(codes[rng.choice(n, p=dist / dist.sum())])
  means = np.stack(means)
  nearest = np.argmin(np.stack([np.square(codes - m).sum(1) for m in means], axis=1), axis=1)
  resp = np.eye(num_components)[nearest]
  previous = -np.inf
  for _ in range(iterations):
    gmm = _m_step(codes, resp, floor)
    log_probs = gmm._component_log_probs(codes)
    total = scipy.special.logsumexp(log_probs, axis=1, keepdims=True)
    resp = np.exp(log_probs - total)
    mean_ll = float(total.mean())
    if mean_ll - previous < tol:
      break
    previous = mean_ll
  return _m_step(codes, resp, floor)


def _m_step(codes, resp, floor) -> GaussianMixture:
  counts = resp.sum(0) + 1e-12
  means = resp.T @ codes / counts[:, None]
  covs = np.stack([(resp[:, k, None] * (codes - m)).T @ (codes - m)
                   for k, m in enumerate(means)]) / counts[:, None, None] + floor
  return GaussianMixture(counts / counts.sum(), means, covs)


DENSITIES = ('gaussian', 'gmm')


def fit(name: str, codes: np.ndarray, num_components: int = 10, seed: int = 0):
  """Fits the density `name` ('gaussian' or 'gmm') to codes."""
  if name == 'gaussian':
    return fit_gaussian(codes)
  if name == 'gmm':
    return fit_gmm(codes, num_components, seed=seed)
  raise ConfigError(f'unknown code density {name!r}; known: {", ".join(DENSITIES)}')
