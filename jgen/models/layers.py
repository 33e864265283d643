"""Layers shared by the model families."""

import jax
import jax.numpy as jnp

from jgen.registry import Registry

ACTIVATIONS = Registry('activation')
for _name, _fn in (('relu', jax.nn.relu), ('leaky_relu', jax.nn.leaky_relu), ('elu', jax.nn.elu),
                   ('gelu', jax.nn.gelu), ('silu', jax.nn.silu), ('tanh', jnp.tanh),
                   ('sigmoid', jax.nn.sigmoid)):
  ACTIVATIONS.register(_name)(_fn)


def depth_to_space(x: jax.Array, factor: int) -> jax.Array:
  """Rearranges (B, H, W, C * f * f) into (B, H * f, W * f, C), as in sub-pixel convolution."""
  b, h, w, c = x.shape
  out_c = c // (factor * factor)
  x = x.reshape(b, h, w, factor, factor, out_c)
  x = x.transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(b, h * factor, w * factor, out_c)


def downsampled_size(size: int, times: int) -> int:
  """Spatial size after `times` stride-2 convolutions with SAME padding."""
  for _ in range(times):
    size = -(-size // 2)
  return size
