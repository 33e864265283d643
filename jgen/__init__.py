"""jgen: autoencoders and GANs side by side in JAX/Flax.

From a notebook or script, the same code `run.py` runs:

  import jgen
  config = jgen.load_config('configs/gan_ring.py', {'gan.loss': 'hinge'})
  trainer = jgen.Trainer(config, 'runs/ring_hinge')
  results = trainer.train()
  curves = jgen.read_metrics('runs/ring_hinge')

The names below import JAX on first use, after jgen's CPU settings (`jgen.runtime`) are
applied, as `run.py` applies them.
"""

import importlib
import sys

_EXPORTS = {
    'Trainer': 'jgen.train',
    'train_and_evaluate': 'jgen.train',
    'read_metrics': 'jgen.train',
    'examples_to_reach': 'jgen.train',
    'load_config': 'jgen.config',
    'register_dataset': ('jgen.data', 'register'),
    'register_adversarial_loss': ('jgen.losses', 'register_adversarial'),
    'register_reconstruction_loss': ('jgen.losses', 'register_reconstruction'),
    'ConfigError': 'jgen.registry',
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
  if name not in _EXPORTS:
    raise AttributeError(f'module jgen has no attribute {name!r}')
  if 'jax' not in sys.modules:
    from jgen import runtime

    runtime.set_cpu_defaults()
  module, attribute = (_EXPORTS[name], name) if isinstance(_EXPORTS[name], str) else (
      _EXPORTS[name])
  return getattr(importlib.import_module(module), attribute)
