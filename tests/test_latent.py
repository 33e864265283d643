"""Densities fitted to codes, and the latent pictures' codes and drawing."""

import numpy as np
import pytest
import scipy.stats

from jgen.evaluate import density, latent
from jgen.registry import ConfigError


def _two_clusters(n=4000, seed=0):
  rng = np.random.default_rng(seed)
  a = rng.multivariate_normal([-4.0, 0.0, 1.0], np.diag([1.0, 0.5, 0.2]), size=n // 4)
  b = rng.multivariate_normal([4.0, 2.0, -1.0], [[1.0, 0.6, 0.0], [0.6, 1.0, 0.0],
                                                 [0.0, 0.0, 0.3]], size=3 * n // 4)
  return np.concatenate([a, b])


def test_gaussian_is_the_sample_mean_and_covariance():
  x = _two_clusters()
  g = density.fit_gaussian(x)
  np.testing.assert_allclose(g.means[0], x.mean(0))
  np.testing.assert_allclose(g.covariances[0], np.cov(x, rowvar=False, bias=True), atol=1e-5)
  np.testing.assert_allclose(g.log_prob(x[:5]), scipy.stats.multivariate_normal(
      x.mean(0), np.cov(x, rowvar=False, bias=True)).logpdf(x[:5]), rtol=1e-5)


def test_gmm_recovers_two_clusters_and_its_density_matches_scipy():
  x = _two_clusters()
  g = density.fit_gmm(x, 2, seed=1)
  order = np.argsort(g.means[:, 0])
  np.testing.assert_allclose(g.weights[order], [0.25, 0.75], atol=0.02)
  np.testing.assert_allclose(g.means[order], [x[:1000].mean(0), x[1000:].mean(0)], atol=0.05)
  np.testing.assert_allclose(g.covariances[order[1]][0, 1], 0.6, atol=0.1)
  want = np.log(sum(w * scipy.stats.multivariate_normal(m, c).pdf(x[:7])
                    for w, m, c in zip(g.weights, g.means, g.covariances, strict=True)))
  np.testing.assert_allclose(g.log_prob(x[:7]), want, rtol=1e-6)
  # A 2-component mixture explains these data better than one Gaussian.
  assert g.log_prob(x).mean() > density.fit_gaussian(x).log_prob(x).mean() + 0.5


def test_gmm_samples_follow_the_mixture():
  g = density.fit_gmm(_two_clusters(), 2, seed=1)
  s = g.sample(np.random.default_rng(0), 20_000)
  np.testing.assert_allclose(s.mean(0), g.weights @ g.means, atol=0.05)
  left = s[:, 0] < 0
  np.testing.assert_allclose(left.mean(), g.weights[np.argmin(g.means[:, 0])], atol=0.01)


def test_bad_density_requests_are_config_errors():
  with pytest.raises(ConfigError, match="unknown code density 'flow'; known: gaussian, gmm"):
    density.fit('flow', np.zeros((5, 2)))
  with pytest.raises(ConfigError, match='num_components=9 must be between 1 and'):
    density.fit_gmm(np.zeros((5, 2)), 9)


def test_interpolation_runs_from_start_to_end():
  start, end = np.array([[0.0, 0.0], [1.0, 2.0]]), np.array([[1.0, 1.0], [3.0, 2.0]])
  codes = latent.interpolate(start, end, 5).reshape(2, 5, 2)
  np.testing.assert_allclose(codes[:, 0], start)
  np.testing.assert_allclose(codes[:, -1], end)
  np.testing.assert_allclose(codes[1, 2], [2.0, 2.0])


def test_grids_are_row_major_with_the_second_dimension_upwards():
  g = latent.gaussian_grid(5).reshape(5, 5, 2)
  q = scipy.stats.norm.ppf(np.linspace(0.05, 0.95, 5))
  np.testing.assert_allclose(g[0, :, 0], q, rtol=1e-6)  # First row: x increasing ...
  np.testing.assert_allclose(g[0, :, 1], q[-1], rtol=1e-6)  # ... at the top, y largest.
  np.testing.assert_allclose(g[-1, :, 1], q[0], rtol=1e-6)
  r = latent.range_grid(3, np.array([0.0, 10.0]), np.array([2.0, 20.0])).reshape(3, 3, 2)
  np.testing.assert_allclose(r[2, 0], [0.0, 10.0])
  np.testing.assert_allclose(r[0, 2], [2.0, 20.0])


def test_scatter_draws_each_label_in_its_colour_where_its_code_is():
  codes = np.array([[0.0, 0.0], [1.0, 1.0], [1.0, 0.0]])
  image = latent.scatter_image(codes, np.array([0, 1, 2]), size=100, low=np.zeros(2),
                               high=np.ones(2), dot=2)
  assert image.shape == (100, 100, 3)
  np.testing.assert_allclose(image[98, 0], latent.PALETTE[0])  # (0, 0): bottom left.
  np.testing.assert_allclose(image[0, 98], latent.PALETTE[1])  # (1, 1): top right.
  np.testing.assert_allclose(image[98, 98], latent.PALETTE[2])  # (1, 0): bottom right.
  assert (image == 1.0).all(axis=-1).sum() == 100 * 100 - 3 * 4  # The rest is white.
