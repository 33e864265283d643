"""Sample metrics against independent computations: closed forms, plain loops, `prdc`."""

import numpy as np
import prdc as prdc_package
import pytest
import scipy.linalg

from jgen.evaluate import metrics


def test_frechet_matches_the_closed_form_for_diagonal_gaussians():
  rng = np.random.default_rng(0)
  m1, m2 = rng.normal(size=6), rng.normal(size=6)
  s1, s2 = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
  # Commuting covariances: the distance is |m1 - m2|^2 + sum (s1 - s2)^2.
  expected = ((m1 - m2) ** 2).sum() + ((s1 - s2) ** 2).sum()
  got = metrics.frechet_distance(m1, np.diag(s1 ** 2), m2, np.diag(s2 ** 2))
  assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_matches_scipy_sqrtm_for_full_covariances():
  rng = np.random.default_rng(1)
  a, b = rng.normal(size=(5, 5)), rng.normal(size=(5, 5))
  cov1, cov2 = a @ a.T + 0.1 * np.eye(5), b @ b.T + 0.1 * np.eye(5)
  m1, m2 = rng.normal(size=5), rng.normal(size=5)
  root = scipy.linalg.sqrtm(cov1 @ cov2).real
  expected = ((m1 - m2) ** 2).sum() + np.trace(cov1 + cov2 - 2 * root)
  assert metrics.frechet_distance(m1, cov1, m2, cov2) == pytest.approx(expected, rel=1e-8)
  assert metrics.frechet_distance(m1, cov1, m1, cov1) == pytest.approx(0, abs=1e-9)


def test_frechet_of_samples_approaches_the_population_value():
  rng = np.random.default_rng(2)
  x = rng.normal(0.0, 1.0, size=(20000, 3))
  y = rng.normal(1.0, 2.0, size=(20000, 3))
  # |dm|^2 = 3, sum (1 - 2)^2 = 3.
  assert metrics.frechet_distance_of(x, y) == pytest.approx(6.0, rel=0.05)


def _kid_double_loop(x, y):
  """The unbiased MMD^2 with kernel (x.y/d + 1)^3, written out pair by pair."""
  d, m = x.shape[1], len(x)
  k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
  xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
  xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
  return xx + yy - 2 * xy


def test_kid_matches_a_plain_double_loop():
  rng = np.random.default_rng(3)
  x, y = rng.normal(size=(30, 4)), rng.normal(0.5, 1.0, size=(30, 4))
  # One subset of every row: a permutation of each set, which the estimate does not see.
  mean, std = metrics.kernel_distance(x, y, num_subsets=1, subset_size=30)
  assert mean == pytest.approx(_kid_double_loop(x, y), rel=1e-10)
  assert std == 0.0
  same_mean, _ = metrics.kernel_distance(x, x, num_subsets=1, subset_size=30)
  assert same_mean == pytest.approx(_kid_double_loop(x, x), abs=1e-12)


def test_kid_subsets_spread_and_centre():
  rng = np.random.default_rng(4)
  x, y = rng.normal(size=(400, 4)), rng.normal(size=(400, 4))
  mean, std = metrics.kernel_distance(x, y, num_subsets=20, subset_size=100)
  assert std > 0
  assert abs(mean) < 3 * std  # Same distribution: the unbiased estimate centres on 0.
  far, _ = metrics.kernel_distance(x, y + 1.0, num_subsets=20, subset_size=100)
  assert far > mean + 10 * std


@pytest.mark.parametrize('chunk', [7, 1024])
def test_prdc_matches_the_prdc_package(chunk, monkeypatch, capsys):
  monkeypatch.setattr(metrics, '_CHUNK', chunk)
  rng = np.random.default_rng(5)
  real = rng.normal(size=(300, 8)).astype(np.float32)
  fake = rng.normal(0.3, 1.2, size=(250, 8)).astype(np.float32)
  ours = metrics.prdc(real, fake, k=5)
  theirs = prdc_package.compute_prdc(real_features=real, fake_features=fake, nearest_k=5)
  capsys.readouterr()  # The package prints its set sizes.
  assert set(ours) == set(theirs)
  for key, value in theirs.items():
    assert ours[key] == pytest.approx(float(value), abs=1e-12), key
  assert 0 < ours['precision'] < 1 and 0 < ours['coverage'] < 1


def test_prdc_of_a_collapsed_set_has_no_recall():
  rng = np.random.default_rng(6)
  real = rng.normal(size=(200, 4))
  collapsed = np.repeat(real[:1], 200, axis=0)  # One real point, repeated.
  out = metrics.prdc(real, collapsed, k=5)
  assert out['precision'] == 1.0 and out['recall'] == 0.0
  assert out['coverage'] == pytest.approx(1 / 200, abs=0.03)


def test_class_statistics_of_balanced_and_collapsed_samples():
  reference = np.full(10, 0.1)
  balanced = np.eye(10)[np.arange(1000) % 10]
  out = metrics.class_statistics(balanced, reference)
  assert out == pytest.approx({'class_kl': 0.0, 'classes_covered': 10,
                               'class_max_deviation': 0.0, 'confidence': 1.0,
                               'classifier_score': 10.0})
  collapsed = np.eye(10)[np.full(1000, 3)]
  out = metrics.class_statistics(collapsed, reference)
  assert out == pytest.approx({'class_kl': np.log(10), 'classes_covered': 1,
                               'class_max_deviation': 9.0, 'confidence': 1.0,
                               'classifier_score': 1.0})
  # Uncertain samples: uniform probabilities have confidence 1/K and score 1.
  uniform = np.full((100, 10), 0.1)
  out = metrics.class_statistics(uniform, reference)
  assert out['confidence'] == pytest.approx(0.1) and out['classifier_score'] == pytest.approx(1)


def test_class_statistics_counts_a_class_at_a_third_of_its_share():
  reference = np.full(10, 0.1)
  labels = np.concatenate([np.repeat(np.arange(10), 100), np.full(50, 4)])  # Class 4 x1.5.
  labels = labels[labels != 4][:900]
  labels = np.concatenate([labels, np.full(33, 4)])  # Class 4 at about a third.
  out = metrics.class_statistics(np.eye(10)[labels], reference)
  share4 = 33 / len(labels)
  assert out['class_max_deviation'] == pytest.approx(1 - share4 / 0.1)
  assert out['classes_covered'] == 10
  assert metrics.class_statistics(np.eye(10)[labels], reference,
                                  covered_share=0.5)['classes_covered'] == 9
