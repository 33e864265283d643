"""Step factories, one module per model family, and the `Task` each family gives the loop.

The train loop in `jgen/train.py` knows nothing of any family: it asks `build_task` for a
`Task` (how to initialise a state, the per-device train and eval steps, what images to
show) and runs it. A new family (GAN, VAE) adds a module here and a line below.
"""

from jgen.registry import Registry
from jgen.steps import ae, classifier, gan, vae
from jgen.steps.task import Task

FAMILIES = Registry('model family')


def build_task(config, image_shape) -> Task:
  """Builds the Task of `config.family` for images of `image_shape`."""
  return FAMILIES.get(config.family)(config, tuple(image_shape))

FAMILIES.register('autoencoder')(ae.build_task)
FAMILIES.register('gan')(gan.build_task)
FAMILIES.register('vae')(vae.build_task)
FAMILIES.register('classifier')(classifier.build_task)

__all__ = ['FAMILIES', 'Task', 'build_task']
