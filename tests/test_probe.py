"""Linear probe and k-NN against scikit-learn on the same features."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier

from jgen.evaluate import probe


def _blobs(n, d=6, k=4, seed=0, spread=2.0):
  rng = np.random.default_rng(seed)
  centres = rng.normal(0, spread, (k, d))
  y = rng.integers(0, k, n)
  return centres[y] + rng.normal(size=(n, d)), y


def test_softmax_regression_matches_scikit_learn():
  x, y = _blobs(400)
  l2 = 1e-2
  w, b = probe.fit_softmax_regression(x, y, 4, l2=l2)
  # scikit-learn minimises |W|^2 / 2 + C sum(CE): the same objective with C = 1 / (n l2).
  ref = LogisticRegression(C=1 / (len(x) * l2), tol=1e-10, max_iter=10000).fit(x, y)
  # Softmax weights are defined up to a shift shared by all classes: compare centred ones.
  np.testing.assert_allclose(w - w.mean(1, keepdims=True),
                             ref.coef_.T - ref.coef_.T.mean(1, keepdims=True), atol=2e-4)
  np.testing.assert_allclose(b - b.mean(), ref.intercept_ - ref.intercept_.mean(), atol=2e-4)


def test_linear_probe_separates_what_is_separable_and_not_noise():
  x, y = _blobs(600, seed=1, spread=5.0)
  tx, ty = _blobs(300, seed=1, spread=5.0)  # The same centres, new points.
  assert probe.linear_probe_accuracy(x, y, tx, ty) > 0.97
  noise = np.random.default_rng(2).normal(size=x.shape)
  assert probe.linear_probe_accuracy(noise, y, noise[:300], ty) < 0.5


@pytest.mark.parametrize('k', [1, 5, 10])
def test_knn_matches_scikit_learn(k):
  x, y = _blobs(500, seed=3)
  test_x, _ = _blobs(200, seed=4)
  ours = probe.knn_predict(x, y, test_x, k=k, chunk=64)
  theirs = KNeighborsClassifier(n_neighbors=k, algorithm='brute').fit(x, y).predict(test_x)
  np.testing.assert_array_equal(ours, theirs)
