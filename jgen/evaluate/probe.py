"""How much a frozen representation knows about the labels: linear probes and k-NN.

Both fit on features of training images and score on features of test images, in float64
numpy. The linear probe is multinomial logistic regression (L2 on the weights, not the
bias) on features standardised by the training set's mean and deviation, fitted by L-BFGS
to convergence; k-NN is a majority vote of the k nearest training features (Euclidean).
"""

import numpy as np
import scipy.optimize
import scipy.special


def fit_softmax_regression(x: np.ndarray, y: np.ndarray, num_classes: int, *, l2: float = 1e-4,
                           max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray]:
  """Minimises mean cross-entropy + l2 / 2 |W|^2 over weights W (D, K) and bias b (K,).

  Returns:
    (W, b).
  """
  x = np.asarray(x, np.float64)
  n, d = x.shape
  onehot = np.eye(num_classes)[y]

  def loss_and_grad(flat):
    w, b = flat[:d * num_classes].reshape(d, num_classes), flat[d * num_classes:]
    logits = x @ w + b
    log_probs = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)
    loss = -(onehot * log_probs).sum() / n + 0.5 * l2 * (w * w).sum()
    residual = (np.exp(log_probs) - onehot) / n
    grad = np.concatenate([(x.T @ residual + l2 * w).ravel(), residual.sum(0)])
    return loss, grad

  result = scipy.optimize.minimize(loss_and_grad, np.zeros(d * num_classes + num_classes),
                                   jac=True, method='L-BFGS-B',
                                   options={'maxiter': max_iter, 'gtol': 1e-8, 'ftol': 1e-12})
  flat = result.x
  return flat[:d * num_classes].reshape(d, num_classes), flat[d * num_classes:]


def linear_probe_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                          test_y: np.ndarray, *, l2: float = 1e-4, max_iter: int = 1000) -> float:
  """Test accuracy of logistic regression fitted on standardised training features."""
  train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
  mean, std = train_x.mean(0), train_x.std(0)
  std = np.where(std > 0, std, 1.0)  # A constant feature stays constant (0).
  num_classes = int(max(train_y.max(), test_y.max())) + 1
  w, b = fit_softmax_regression((train_x - mean) / std, train_y, num_classes, l2=l2,
                                max_iter=max_iter)
  predictions = (((test_x - mean) / std) @ w + b).argmax(1)
  return float((predictions == test_y).mean())


def knn_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, *, k: int = 10,
                chunk: int = 1024) -> np.ndarray:
  """The majority label of each test row's k nearest training rows (ties: smallest label)."""
  train_x, test_x = np.asarray(train_x, np.float64), np.asarray(test_x, np.float64)
  train_sq = (train_x * train_x).sum(1)
  num_classes = int(train_y.max()) + 1
  out = []
  for lo in range(0, len(test_x), chunk):
    block = test_x[lo:lo + chunk]
    sq = (block * block).sum(1)[:, None] - 2 * block @ train_x.T + train_sq[None]
    nearest = np.argpartition(sq, k - 1, axis=1)[:, :k]
    votes = np.apply_along_axis(np.bincount, 1, train_y[nearest], minlength=num_classes)
    out.append(votes.argmax(1))
  return np.concatenate(out)


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                 test_y: np.ndarray, *, k: int = 10) -> float:
  """Test accuracy of the k-nearest-neighbour vote."""
  return float((knn_predict(train_x, train_y, test_x, k=k) == test_y).mean())
