"""Losses by registered name."""

from jgen.losses import reconstruction
from jgen.registry import Registry

RECONSTRUCTION = Registry('reconstruction loss')
for _name in ('mse', 'bce', 'l1'):
  RECONSTRUCTION.register(_name)(getattr(reconstruction, _name))


def get_reconstruction_loss(name: str):
  """Returns the reconstruction loss `name`: (*, logits, targets) -> per-example loss."""
  return RECONSTRUCTION.get(name)
