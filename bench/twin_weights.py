"""jgen's weights in its PyTorch twins: `load(twin, config, image_shape, state)` copies a jgen
train state's parameters (and batch-norm running statistics) into the networks of a
`bench.twins.TorchStep`, so that both compute the same function (tests/test_twins.py).

The layouts, layer by layer:
  Dense: kernel (in, out) -> Linear weight (out, in).
  Conv: kernel HWIO -> Conv2d weight OIHW.
  ConvTranspose (jgen's strided and sub-pixel layers are `lax.conv_transpose` with the kernel
    unflipped, HWIO with O the output channels) -> ConvTranspose2d weight (in, out, kH, kW),
    the kernel flipped in both spatial axes: output pixel o of jgen's layer (kernel k,
    padding k/2 of the dilated input) is sum_t w[t] x[(o + t - k/2) / 2], PyTorch's
    (padding k/2 - 1) sum_t W[t] x[(o - t + k/2 - 1) / 2], so W[t] = w[k - 1 - t].
  BatchNorm: scale, bias, running mean and var -> weight, bias, running_mean, running_var.
  LayerNorm (per-channel scale and bias) -> GroupNorm(1, C) / LayerNorm weight and bias.
Orders: jgen flattens NHWC maps in (H, W, C) order, PyTorch NCHW maps in (C, H, W) order, so
the Dense after a flatten has its input rows permuted and the Dense before an unflatten its
output columns; jgen's depth_to_space reads channel phase * C + c where PyTorch's PixelShuffle
reads c * 4 + phase, so the convolution before it has its output channels permuted.
"""

import numpy as np


def hwc_to_chw(height: int, width: int, channels: int) -> np.ndarray:
  """For each position of a (C, H, W)-flattened map, its index in the (H, W, C) flattening."""
  return np.arange(height * width * channels).reshape(height, width, channels).transpose(
      2, 0, 1).ravel()


def subpixel_order(channels: int) -> np.ndarray:
  """For each input channel c * 4 + phase of PixelShuffle(2) (`channels` out), the channel
  phase * channels + c that jgen's depth_to_space puts at the same output pixel."""
  return np.arange(4 * channels).reshape(4, channels).T.ravel()


def _set(tensor, value) -> None:
  import torch

  value = torch.from_numpy(np.array(value, np.float32))  # A copy: jax's may be read-only.
  if tuple(value.shape) != tuple(tensor.shape):
    raise ValueError(f'jgen shape {tuple(value.shape)} != torch shape {tuple(tensor.shape)}')
  tensor.copy_(value.to(tensor.device, tensor.dtype))


def _bias(module, p: dict, order=None) -> None:
  bias = p.get('bias')
  if (bias is None) != (module.bias is None):
    raise ValueError(f'{type(module).__name__}: bias in jgen {bias is not None}, in torch '
                     f'{module.bias is not None}')
  if bias is not None:
    _set(module.bias, np.asarray(bias)[order] if order is not None else bias)


def dense(linear, p: dict, *, rows=None, cols=None) -> None:
  """A Flax Dense's `p` into `linear`; `rows` / `cols`: torch's order of the kernel's inputs
  / outputs as indices into jgen's (after a flatten / before an unflatten)."""
  kernel = np.asarray(p['kernel'])
  if rows is not None:
    kernel = kernel[rows]
  if cols is not None:
    kernel = kernel[:, cols]
  _set(linear.weight, kernel.T)
  _bias(linear, p, cols)


def conv(module, p: dict, *, out_order=None) -> None:
  """A Flax Conv's HWIO kernel into an OIHW Conv2d; `out_order`: torch's order of the output
  channels as indices into jgen's."""
  kernel = np.asarray(p['kernel'])
  if out_order is not None:
    kernel = kernel[..., out_order]
  _set(module.weight, kernel.transpose(3, 2, 0, 1))
  _bias(module, p, out_order)


def conv_transpose(module, p: dict) -> None:
  """jgen's stride-2 transposed convolution (HWIO, unflipped) into a ConvTranspose2d."""
  _set(module.weight, np.asarray(p['kernel'])[::-1, ::-1].transpose(2, 3, 0, 1))
  _bias(module, p)


def norm(module, p: dict, stats: dict | None = None) -> None:
  """Batch or layer norm's scale and bias, and batch norm's running statistics."""
  _set(module.weight, p['scale'])
  _set(module.bias, p['bias'])
  if stats:
    _set(module.running_mean, stats['mean'])
    _set(module.running_var, stats['var'])


def _of(module, name: str):
  """The modules of `module` (in registration order) of the torch.nn class `name`."""
  from torch import nn

  cls = getattr(nn, name)
  return [m for m in module.modules() if isinstance(m, cls)]


def _unwrap(net):
  return getattr(net, '_orig_mod', net)  # torch.compile's wrapper shares the parameters.


# --- Networks ---------------------------------------------------------------------------------


def mlp_encoder(net, params: dict, image_shape) -> None:
  """jgen's `Encoder` (Dense_0.., code) into torch_models.mlp_encoder."""
  linears = _of(net, 'Linear')
  names = [f'Dense_{i}' for i in range(len(linears) - 1)] + ['code']
  for i, (linear, name) in enumerate(zip(linears, names, strict=True)):
    dense(linear, params[name], rows=hwc_to_chw(*image_shape) if i == 0 else None)


def mlp_decoder(net, params: dict, image_shape, last: str = 'logits') -> None:
  """jgen's `Decoder` (Dense_0.., logits) or `MLPGenerator` (.., image) into its twin."""
  linears = _of(net, 'Linear')
  names = [f'Dense_{i}' for i in range(len(linears) - 1)] + [last]
  for i, (linear, name) in enumerate(zip(linears, names, strict=True)):
    dense(linear, params[name], cols=hwc_to_chw(*image_shape) if i == len(linears) - 1 else None)


def _flat_map(net, image_shape) -> np.ndarray:
  """`hwc_to_chw` of the map a stack of stride-2 SAME convolutions leaves of the image."""
  from bench.torch_models import _downsampled

  convs = _of(net, 'Conv2d')
  n = len(convs)
  return hwc_to_chw(_downsampled(image_shape[0], n), _downsampled(image_shape[1], n),
                    convs[-1].out_channels)


def conv_encoder(net, params: dict, image_shape) -> None:
  """jgen's `ConvEncoder` (Conv_0.., code) into torch_models.conv_encoder."""
  for i, module in enumerate(_of(net, 'Conv2d')):
    conv(module, params[f'Conv_{i}'])
  (linear,) = _of(net, 'Linear')
  dense(linear, params['code'], rows=_flat_map(net, image_shape))


def conv_decoder(net, params: dict) -> None:
  """jgen's `ConvDecoder` (Dense_0, Conv_0.., logits) into torch_models.conv_decoder."""
  (linear,) = _of(net.project, 'Linear')
  (unflatten,) = _of(net.project, 'Unflatten')
  c, h, w = unflatten.unflattened_size
  dense(linear, params['Dense_0'], cols=hwc_to_chw(h, w, c))
  for i, module in enumerate(_of(net.up, 'Conv2d')):
    conv(module, params[f'Conv_{i}'], out_order=subpixel_order(module.out_channels // 4))
  conv(net.logits, params['logits'])


def mlp_discriminator(net, params: dict, image_shape) -> None:
  """jgen's `MLPDiscriminator` (Dense_0.., logits) into torch_models.mlp_gan's."""
  for i, linear in enumerate(net.dense):
    dense(linear, params[f'Dense_{i}'], rows=hwc_to_chw(*image_shape) if i == 0 else None)
  dense(net.logits, params['logits'])


class _Norms:
  """Hands out a network's Flax norm-layer names in creation order (BatchNorm_0, ...)."""

  def __init__(self, params: dict, stats: dict):
    self.params, self.stats, self.count = params, stats, {}

  def load(self, module) -> None:
    from torch import nn

    if isinstance(module, nn.Identity):
      return
    kind = 'BatchNorm' if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d) else 'LayerNorm'
    name = f'{kind}_{self.count.get(kind, 0)}'
    self.count[kind] = self.count.get(kind, 0) + 1
    norm(module, self.params[name], self.stats.get(name))


_NORMS = ('BatchNorm1d', 'BatchNorm2d', 'GroupNorm', 'LayerNorm', 'Identity')


def conv_generator(net, params: dict, stats: dict) -> None:
  """jgen's `ConvGenerator` (Dense_i, project, up_i, image; norms in creation order) into
  torch_models.conv_gan's generator."""
  from torch import nn

  norms = _Norms(params, stats)
  layers = list(net.net)
  linears = [m for m in layers if isinstance(m, nn.Linear)]
  ups = [m for m in layers if isinstance(m, nn.ConvTranspose2d)]
  for i, module in enumerate(layers):
    if isinstance(module, nn.Linear):
      if module is linears[-1]:  # The projection to the smallest map, then unflattened.
        c, h, w = next(m for m in layers[i:] if isinstance(m, nn.Unflatten)).unflattened_size
        dense(module, params['project'], cols=hwc_to_chw(h, w, c))
      else:
        dense(module, params[f'Dense_{linears.index(module)}'])
    elif isinstance(module, nn.ConvTranspose2d):
      j = ups.index(module)
      conv_transpose(module, params['image' if j == len(ups) - 1 else f'up{j}'])
    elif type(module).__name__ in _NORMS:
      norms.load(module)


def conv_discriminator(net, params: dict, stats: dict, image_shape) -> None:
  """jgen's `ConvDiscriminator` (Conv_i, Dense_i, logits, q: Dense_0, category, code; norms
  in creation order) into torch_models.conv_gan's discriminator."""
  from torch import nn

  norms = _Norms(params, stats)
  flat = _flat_map(net.trunk, image_shape)
  convs = linears = 0
  for module in net.trunk:
    if isinstance(module, nn.Conv2d):
      conv(module, params[f'Conv_{convs}'])
      convs += 1
    elif isinstance(module, nn.Linear):
      dense(module, params[f'Dense_{linears}'], rows=flat if linears == 0 else None)
      linears += 1
    elif type(module).__name__ in _NORMS:
      norms.load(module)
  # Without dense layers the logit and Q read the flattened map itself.
  rows = flat if not linears else None
  dense(net.logits, params['logits'], rows=rows)
  if net.q is not None:
    q_params, q_stats = params['q'], stats.get('q', {})
    dense(net.q[0], q_params['Dense_0'], rows=rows)
    _Norms(q_params, q_stats).load(net.q[1])
    if net.category is not None:
      dense(net.category, q_params['category'])
    if net.code is not None:
      dense(net.code, q_params['code'])


# --- Whole twins --------------------------------------------------------------------------------


class _Reads(dict):
  """A nested dict of arrays that logs the paths of the leaves read from it."""

  def __init__(self, tree: dict, log: set, path: tuple = ()):
    super().__init__(tree)
    self.log, self.path = log, path

  def __getitem__(self, key):
    value = super().__getitem__(key)
    if isinstance(value, dict):
      return _Reads(value, self.log, (*self.path, key))
    self.log.add((*self.path, key))
    return value

  def get(self, key, default=None):
    return self[key] if key in self else default


def _leaf_paths(tree: dict, path: tuple = ()) -> set:
  out = set()
  for key, value in tree.items():
    out |= _leaf_paths(value, (*path, key)) if isinstance(value, dict) else {(*path, key)}
  return out


def load(twin, config, image_shape, state) -> None:
  """Copies a jgen train state of `config` (an autoencoder's or VAE's `TrainState`, a GAN's
  `GANState`; host or device arrays) into the networks of `twin`, a `twins.TorchStep`."""
  import jax
  import torch

  if config.family not in ('autoencoder', 'vae', 'gan'):
    raise ValueError(f'no weight map of family {config.family!r}')
  name = config.model.name
  nets = [_unwrap(net) for net in twin.nets]
  read = set()
  if config.family in ('autoencoder', 'vae'):
    trees = {'params': jax.device_get(state.params)}
  else:
    trees = dict(zip(('g_params', 'd_params', 'g_stats', 'd_stats'), jax.device_get(
        (state.g_params, state.d_params, state.g_batch_stats, state.d_batch_stats)), strict=True))
  trees = {key: _Reads(dict(tree or {}), read, (key,)) for key, tree in trees.items()}
  with torch.no_grad():
    if config.family in ('autoencoder', 'vae'):
      params = trees['params']
      enc, dec = nets
      if name in ('mlp_autoencoder', 'mlp_vae'):
        mlp_encoder(enc, params['encoder'], image_shape)
        mlp_decoder(dec, params['decoder'], image_shape)
      elif name in ('conv_autoencoder', 'conv_vae'):
        conv_encoder(enc, params['encoder'], image_shape)
        conv_decoder(dec, params['decoder'])
      else:
        raise ValueError(f'no weight map of model {name!r}')
    elif config.family == 'gan':
      g, d = nets
      if name == 'mlp_gan':
        mlp_decoder(g, trees['g_params'], image_shape, last='image')
        mlp_discriminator(d, trees['d_params'], image_shape)
      elif name in ('dcgan', 'infogan'):
        conv_generator(g, trees['g_params'], trees['g_stats'])
        conv_discriminator(d, trees['d_params'], trees['d_stats'], image_shape)
      else:
        raise ValueError(f'no weight map of model {name!r}')
  unread = set().union(*(_leaf_paths(tree, (key,)) for key, tree in trees.items())) - read
  if unread:  # A jgen layer the twin lacks (or maps nowhere).
    raise ValueError(f'jgen variables not copied into the twin: {sorted(unread)}')
