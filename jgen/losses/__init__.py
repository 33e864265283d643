"""Losses by registered name: reconstruction, adversarial, and adversarial penalties."""

from jgen.losses import adversarial, reconstruction
from jgen.registry import Registry

RECONSTRUCTION = Registry('reconstruction loss')
for _name in ('mse', 'bce', 'l1'):
  RECONSTRUCTION.register(_name)(getattr(reconstruction, _name))

ADVERSARIAL = Registry('adversarial loss')
for _name in ('minimax', 'non_saturating', 'hinge', 'least_squares', 'wasserstein'):
  ADVERSARIAL.register(_name)(getattr(adversarial, _name))

PENALTIES = Registry('adversarial penalty')
for _name in ('gradient_penalty', 'r1'):
  PENALTIES.register(_name)(getattr(adversarial, _name))

for _registry in (RECONSTRUCTION, ADVERSARIAL, PENALTIES):
  _registry.freeze()  # User code adds names; it cannot replace these.


def register_reconstruction(name: str, fn):
  """Registers `fn(*, logits, targets) -> per-example loss` as `config.loss = name`.

  Logits are the decoder's outputs (the image is `sigmoid(logits)`), targets images in
  [0, 1]; sum over pixels per example, as the built-in losses do. A user-registered name
  may be registered again (a notebook cell run twice); jgen's own names may not.
  """
  return RECONSTRUCTION.register(name, replace=True)(fn)


def register_adversarial(name: str, d_loss, g_loss, *, probabilistic: bool = False,
                         uses_real: bool = False) -> adversarial.AdversarialLoss:
  """Registers a GAN loss as `config.gan.loss = name`.

  Args:
    name: the config name.
    d_loss: `(*, real_logits, fake_logits) -> per-example loss` the discriminator minimises.
    g_loss: `(*, fake_logits) -> per-example loss` the generator minimises; with
      `uses_real`, `(*, fake_logits, real_logits)` (the step then runs the discriminator on
      a real batch for the generator update too).
    probabilistic: whether logits stand for probabilities (D(x) = sigmoid(logits) is then
      what is logged as `d_real` and `d_fake`) or are raw critic values.
    uses_real: see `g_loss`.
  """
  loss = adversarial.AdversarialLoss(d_loss, g_loss, probabilistic=probabilistic,
                                     uses_real=uses_real)
  ADVERSARIAL.register(name, replace=True)(loss)
  return loss


def get_reconstruction_loss(name: str):
  """Returns the reconstruction loss `name`: (*, logits, targets) -> per-example loss."""
  return RECONSTRUCTION.get(name)


def get_adversarial_loss(name: str) -> adversarial.AdversarialLoss:
  """Returns the adversarial loss `name`: its `d_loss` and `g_loss`."""
  return ADVERSARIAL.get(name)


def get_penalty(name: str):
  """Returns the penalty `name`: (*, critic, real, ...) -> per-example penalty."""
  return PENALTIES.get(name)
