"""Layers shared by the model families."""

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jgen.registry import Registry
from jgen.runtime import on_cpu

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


_NHWC = ('NHWC', 'HWIO', 'NHWC')


def _conv(x, kernel, padding):
  return jax.lax.conv_general_dilated(x, kernel, (1, 1), padding, dimension_numbers=_NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_stride1(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  """A stride-1 NHWC convolution whose kernel gradient is one matmul over image patches.

  Values and the input gradient are lax's own. XLA:CPU computes the kernel gradient of a
  2x2 convolution with many channels on a slow path (about 940 ms against 15 ms for the
  patch matmul, for 7x7x128 -> 8x8x256 at batch 128); the matmul is exact the same sum.

  Args:
    x: (B, H, W, Cin).
    kernel: (kh, kw, Cin, Cout).
    padding: ((top, bottom), (left, right)), a hashable tuple.
  """
  return _conv(x, kernel, padding)


def _conv_fwd(x, kernel, padding):
  return _conv(x, kernel, padding), (x, kernel)


def _conv_bwd(padding, residuals, g):
  x, kernel = residuals
  kh, kw = kernel.shape[:2]
  _, x_vjp = jax.vjp(lambda x: _conv(x, kernel, padding), x)
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  oh, ow = g.shape[1:3]
  kernel_grad = jnp.stack([
      jnp.stack([jnp.einsum('bhwc,bhwo->co', xp[:, u:u + oh, v:v + ow], g) for v in range(kw)])
      for u in range(kh)])
  return x_vjp(g)[0], kernel_grad


conv_stride1.defvjp(_conv_fwd, _conv_bwd)


def _phase_taps(kernel_size: int, pad: int, phase: int) -> tuple[int, list[int]]:
  """The input offset of a phase's first tap, and its kernel taps in order.

  Output pixel `2 * i + phase` of a stride-2 transposed convolution (kernel `k`, padding
  `pad` of the dilated input, unflipped kernel as in `lax.conv_transpose`) is
  sum_t w[t] * x[i + (phase + t - pad) / 2] over the taps t of matching parity.
  """
  taps = [t for t in range(kernel_size) if (phase + t - pad) % 2 == 0]
  return (phase + taps[0] - pad) // 2, taps


# Below this many output channels lax's own transposed convolution trains faster on CPU
# (7 against 30 ms for 14x14x64 -> 28x28x1 at batch 128) and is kept.
_SUBPIXEL_MIN_FEATURES = 16


class _ConvTranspose2x(nn.Module):
  """The parameters of a stride-2 transposed convolution, as `nn.ConvTranspose` names them:
  `kernel` (k, k, Cin, features) and `bias`; subclasses compute the same function."""

  features: int
  kernel_size: int = 4
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros_init()

  def _add_bias(self, y):
    if not self.use_bias:
      return y
    return y + self.param('bias', self.bias_init, (self.features,)).astype(y.dtype)


class SubPixelConvTranspose(_ConvTranspose2x):
  """A stride-2 transposed convolution computed as a stride-1 convolution + depth-to-space.

  Exactly `nn.ConvTranspose(features, (k, k), strides=(2, 2), padding=((k // 2,) * 2,) * 2)`
  (same `kernel` parameter and shape, output twice the input size; for k=4 it is PyTorch's
  `ConvTranspose2d(k=4, stride=2, padding=1)` with a flipped kernel). Each of the four output
  phases (row parity, column parity) is a stride-1 convolution of the input with k/2 x k/2
  of the kernel's taps, so one convolution to 4x the channels, a shift per phase and a
  depth-to-space give the same sums. With `conv_stride1`'s kernel gradient, a DCGAN layer
  (7x7x128 -> 14x14x64, batch 128) trains about 9x faster on CPU than through
  `lax.conv_transpose`; tests/test_models.py proves the equality of values and gradients.
  With few output channels (an image layer), and off CPU, it is lax's transposed
  convolution itself.
  """

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    if k % 2:
      raise ValueError(f'SubPixelConvTranspose needs an even kernel_size, got {k}')
    b, h, w, cin = x.shape
    kernel = self.param('kernel', self.kernel_init, (k, k, cin, self.features))
    pad = k // 2
    if self.features < _SUBPIXEL_MIN_FEATURES or not on_cpu():
      y = jax.lax.conv_transpose(x, kernel.astype(x.dtype), (2, 2), ((pad, pad), (pad, pad)),
                                 dimension_numbers=_NHWC)
      return self._add_bias(y)
    starts, taps = zip(*(_phase_taps(k, pad, a) for a in (0, 1)), strict=True)
    lo, hi = -min(starts), max(starts) + k // 2 - 1
    # The (k/2, k/2, cin, 2, 2, features) kernel of the four phases: a gather of the taps.
    phase_kernels = [[kernel[np.ix_(taps[a], taps[c])] for c in (0, 1)] for a in (0, 1)]
    stacked = jnp.stack([jnp.stack(row, axis=-2) for row in phase_kernels], axis=-3)
    stacked = stacked.reshape(k // 2, k // 2, cin, 4 * self.features)
    z = conv_stride1(x, stacked.astype(x.dtype), ((lo, hi), (lo, hi)))
    z = z.reshape(*z.shape[:3], 2, 2, self.features)
    # Phase (a, c) of output pixel (i, j) sits at z[i + start_a + lo, j + start_c + lo].
    rows = []
    for a in (0, 1):
      r0 = starts[a] + lo
      rows.append(jnp.stack([z[:, r0:r0 + h, starts[c] + lo:starts[c] + lo + w, a, c]
                             for c in (0, 1)], axis=3))
    y = jnp.stack(rows, axis=3)  # (B, H, W, 2 [row phase], 2 [col phase], features)
    return self._add_bias(depth_to_space(y.reshape(b, h, w, 4 * self.features), 2))


def _conv_stride2(x, kernel, padding):
  return jax.lax.conv_general_dilated(x, kernel, (2, 2), padding, dimension_numbers=_NHWC)


def _flip_swap(kernel):
  """A transposed convolution's kernel as the kernel of the convolution it transposes."""
  return kernel[::-1, ::-1].transpose(0, 1, 3, 2)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_transpose_stride2(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  """`lax.conv_transpose(x, kernel, (2, 2), padding)` (NHWC, HWIO, unflipped kernel, as
  `nn.ConvTranspose`), differentiated as what it is: the input gradient of a stride-2
  convolution C with the flipped, channel-swapped kernel. So its input gradient is C
  applied to the output gradient, and its kernel gradient is C's kernel gradient (input:
  the output gradient; cotangent: x). XLA:CPU runs both as ordinary strided convolutions,
  instead of the kernel gradient of a dilated convolution (650 ms against about 20 ms for a
  DCGAN layer, 7x7x128 -> 14x14x64 at batch 128).

  Args:
    x: (B, H, W, Cin).
    kernel: (kh, kw, Cin, Cout).
    padding: ((top, bottom), (left, right)) of the dilated input, a hashable tuple.
  """
  return jax.lax.conv_transpose(x, kernel, (2, 2), padding, dimension_numbers=_NHWC)


def _conv_transpose_fwd(x, kernel, padding):
  return conv_transpose_stride2(x, kernel, padding), (x, kernel)


def _materialize(g: jax.Array) -> jax.Array:
  """`g`, exactly for finite values (a product with the identity adds only zeros), as the
  output of a matrix product, which XLA cannot fuse into g's consumers: a transposed copy
  for a kernel gradient otherwise recomputes the elementwise work that produced g in its
  strided order."""
  flat = g.reshape(-1, g.shape[-1])
  eye = jnp.eye(g.shape[-1], dtype=g.dtype)  # HIGHEST: no reduced-precision (TF32) product.
  return jnp.matmul(flat, eye, precision=jax.lax.Precision.HIGHEST).reshape(g.shape)


def _conv_transpose_bwd(padding, residuals, g):
  x, kernel = residuals
  # Measured side by side on a DCGAN step: 275 -> 270 ms on one core, 152 -> 147 ms on two,
  # the same parameters after the same steps (bench/dcgan_step.py's setting). (This whole
  # gradient is used on CPU only.)
  g = _materialize(g)
  kh, kw = kernel.shape[:2]
  (top, bottom), (left, right) = padding
  c_padding = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
  c_kernel = _flip_swap(kernel)
  _, kernel_vjp = jax.vjp(lambda k: _conv_stride2(g, k, c_padding), c_kernel)
  return _conv_stride2(g, c_kernel, c_padding), _flip_swap(kernel_vjp(x)[0])


conv_transpose_stride2.defvjp(_conv_transpose_fwd, _conv_transpose_bwd)


class ConvTransposeStride2(_ConvTranspose2x):
  """`nn.ConvTranspose(features, (k, k), strides=(2, 2), padding=((k // 2,) * 2,) * 2)`, the
  same function of the same parameters, trained on CPU through `conv_transpose_stride2`'s
  gradients (tests/test_gan.py checks values and gradients against nn.ConvTranspose), and
  through lax's own elsewhere."""

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param('kernel', self.kernel_init, (k, k, x.shape[-1], self.features))
    fn = conv_transpose_stride2 if on_cpu() else functools.partial(
        jax.lax.conv_transpose, strides=(2, 2), dimension_numbers=_NHWC)
    return self._add_bias(fn(x, kernel.astype(x.dtype), padding=((k // 2, k // 2),) * 2))


def same_padding(size: int, kernel_size: int, stride: int) -> tuple[int, int]:
  """The (low, high) padding of `padding='SAME'` along one dimension (XLA's and Flax's)."""
  total = max((-(-size // stride) - 1) * stride + kernel_size - size, 0)
  return total // 2, total - total // 2


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv_stride2(x: jax.Array, kernel: jax.Array, padding) -> jax.Array:
  """A stride-2 NHWC convolution whose input gradient is `conv_transpose_stride2`.

  Values and the kernel gradient are lax's own, and so is the input gradient's value: it
  is the transposed convolution with the flipped, channel-swapped kernel. What changes is
  how that input gradient is differentiated in turn, as a gradient penalty (WGAN-GP, R1)
  does: through `conv_transpose_stride2`'s gradients, ordinary stride-2 convolutions,
  instead of the kernel gradient of an input-dilated convolution, which XLA:CPU runs on a
  slow path.

  Args:
    x: (B, H, W, Cin).
    kernel: (kh, kw, Cin, Cout).
    padding: ((top, bottom), (left, right)), a hashable tuple.
  """
  return _conv_stride2(x, kernel, padding)


def _conv_stride2_fwd(x, kernel, padding):
  return _conv_stride2(x, kernel, padding), (x, kernel)


def _conv_stride2_bwd(padding, residuals, g):
  x, kernel = residuals
  kh, kw = kernel.shape[:2]
  (top, bottom), (left, right) = padding
  # The transposed convolution's padding of the dilated cotangent, with the high side
  # widened by the input rows (columns) that no window reached.
  extra = [x.shape[1 + d] + p[0] + p[1] - k - 2 * (g.shape[1 + d] - 1)
           for d, (p, k) in enumerate(((padding[0], kh), (padding[1], kw)))]
  t_padding = ((kh - 1 - top, kh - 1 - bottom + extra[0]),
               (kw - 1 - left, kw - 1 - right + extra[1]))
  _, kernel_vjp = jax.vjp(lambda k: _conv_stride2(x, k, padding), kernel)
  return conv_transpose_stride2(g, _flip_swap(kernel), t_padding), kernel_vjp(g)[0]


conv_stride2.defvjp(_conv_stride2_fwd, _conv_stride2_bwd)


class ConvStride2(nn.Module):
  """`nn.Conv(features, (k, k), strides=(2, 2), padding='SAME')`, the same function of the
  same parameters, trained on CPU through `conv_stride2` (whose input gradient differentiates
  fast, for gradient penalties) and through lax's own convolution elsewhere."""

  features: int
  kernel_size: int = 4
  use_bias: bool = True
  kernel_init: Callable = nn.initializers.lecun_normal()
  bias_init: Callable = nn.initializers.zeros_init()

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k = self.kernel_size
    kernel = self.param('kernel', self.kernel_init, (k, k, x.shape[-1], self.features))
    padding = (same_padding(x.shape[1], k, 2), same_padding(x.shape[2], k, 2))
    y = (conv_stride2 if on_cpu() else _conv_stride2)(x, kernel.astype(x.dtype), padding)
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,)).astype(y.dtype)
    return y

def _channel_sums(*columns: jax.Array) -> jax.Array:
  """Float32 sums of (M, C) arrays over M.

  On CPU, as one matrix product with a ones vector per array: XLA:CPU lowers a reduction
  over all but the minor (channel) dimension to reduce-window loops, and a product with
  ones runs on its matmul kernels instead. The product asks for full float32 precision
  (HIGHEST), so no backend may round its operands (TF32 on GPUs, bfloat16 passes on TPUs);
  elsewhere a plain float32 reduction.
  """
  columns = [c.astype(jnp.float32) for c in columns]
  if not on_cpu():
    return jnp.stack([c.sum(axis=0) for c in columns])
  ones = jnp.ones((columns[0].shape[0],), jnp.float32)
  return jnp.stack([jnp.matmul(ones, c, precision=jax.lax.Precision.HIGHEST)
                    for c in columns])


def _global_sums(sums: jax.Array, count: int, axis_name: str | None):
  if axis_name is None:
    return sums, count
  return jax.lax.psum(sums, axis_name), count * jax.lax.psum(1, axis_name)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, epsilon: float,
               axis_name: str | None) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Batch normalisation of `x` (..., C) over all but its last axis (and over devices on
  `axis_name`). Returns (y, mean, var); mean and var are the biased batch moments, for the
  running averages, and carry no gradient (their cotangents are ignored)."""
  return _batch_norm_fwd(x, scale, bias, epsilon, axis_name)[0]


def _batch_norm_fwd(x, scale, bias, epsilon, axis_name):
  # Moments, normalisation and gradients in float32 whatever the compute dtype; y in x's.
  x2 = x.reshape(-1, x.shape[-1]).astype(jnp.float32)
  sums, n = _global_sums(_channel_sums(x2, x2 * x2), x2.shape[0], axis_name)
  mean = sums[0] / n
  var = jnp.maximum(sums[1] / n - mean * mean, 0.0)  # As Flax's fast variance.
  inv = jax.lax.rsqrt(var + epsilon)
  xhat = (x2 - mean) * inv
  y = (xhat * scale.astype(jnp.float32) + bias.astype(jnp.float32)).reshape(x.shape)
  return (y.astype(x.dtype), mean, var), (xhat, inv, scale)


def _batch_norm_bwd(epsilon, axis_name, residuals, cotangents):
  del epsilon
  xhat, inv, scale = residuals
  g = cotangents[0].reshape(xhat.shape).astype(jnp.float32)
  local = _channel_sums(g, g * xhat)  # d bias, d scale of this device's examples.
  sums, n = _global_sums(local, xhat.shape[0], axis_name)
  dx = (scale.astype(jnp.float32) * inv / n) * (n * g - sums[0] - xhat * sums[1])
  d_scale, d_bias = (_like(s.astype(scale.dtype), scale) for s in (local[1], local[0]))
  return dx.reshape(cotangents[0].shape).astype(cotangents[0].dtype), d_scale, d_bias


def _like(cotangent: jax.Array, primal: jax.Array) -> jax.Array:
  """Sums a cotangent over the device axes its primal does not vary over (under shard_map,
  the transpose of using a replicated value on every device)."""
  axes = tuple(jax.typeof(cotangent).manual_axis_type.varying
               - jax.typeof(primal).manual_axis_type.varying)
  return jax.lax.psum(cotangent, axes) if axes else cotangent


batch_norm.defvjp(_batch_norm_fwd, _batch_norm_bwd)


class BatchNorm(nn.Module):
  """`nn.BatchNorm` over the last axis with the same variables, defaults and running
  averages, its batch moments and their gradients computed as matrix products
  (`batch_norm`). Measured side by side on one core, the DCGAN step ran at 0.90x PyTorch
  with it against 0.78x with `nn.BatchNorm` (bench/dcgan_step.py; a noisy machine).
  """

  use_running_average: bool = False
  momentum: float = 0.99
  epsilon: float = 1e-5
  axis_name: str | None = None
  scale_init: Callable = nn.initializers.ones
  bias_init: Callable = nn.initializers.zeros

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    features = x.shape[-1]
    ra_mean = self.variable('batch_stats', 'mean', jnp.zeros, (features,), jnp.float32)
    ra_var = self.variable('batch_stats', 'var', jnp.ones, (features,), jnp.float32)
    scale = self.param('scale', self.scale_init, (features,), jnp.float32)
    bias = self.param('bias', self.bias_init, (features,), jnp.float32)
    if self.use_running_average:
      y = (x - ra_mean.value) * jax.lax.rsqrt(ra_var.value + self.epsilon) * scale + bias
      return y.astype(x.dtype)
    y, mean, var = batch_norm(x, scale, bias, self.epsilon, self.axis_name)
    if not self.is_initializing():
      mean, var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var)
      ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
      ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var
    return y
