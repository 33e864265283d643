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


def get_reconstruction_loss(name: str):
  """Returns the reconstruction loss `name`: (*, logits, targets) -> per-example loss."""
  return RECONSTRUCTION.get(name)


def get_adversarial_loss(name: str) -> adversarial.AdversarialLoss:
  """Returns the adversarial loss `name`: its `d_loss` and `g_loss`."""
  return ADVERSARIAL.get(name)


def get_penalty(name: str):
  """Returns the penalty `name`: (*, critic, real, ...) -> per-example penalty."""
  return PENALTIES.get(name)
