"""PyTorch twins of jgen models, for the benches that set jgen beside PyTorch."""


def dcgan(noise_dim: int = 100, features: int = 64, *, dcgan_init: bool = False):
  """jgen's MNIST DCGAN (configs/dcgan_mnist.py) in PyTorch: (generator, discriminator).

  7x7x128 -> 14x14x64 -> 28x28x1 generator with batch norm and ReLU, tanh output; a
  discriminator of two 4x4 stride-2 convolutions (batch norm on the second), LeakyReLU(0.2),
  one logit; no bias before batch norm. `dcgan_init`: Radford et al.'s initialisation as
  PyTorch's DCGAN example applies it (weights N(0, 0.02), batch-norm scales N(1, 0.02),
  biases 0); otherwise PyTorch's defaults.
  """
  import torch
  from torch import nn

  class Generator(nn.Module):
    def __init__(self):
      super().__init__()
      self.project = nn.Linear(noise_dim, 7 * 7 * 2 * features, bias=False)
      self.net = nn.Sequential(
          nn.BatchNorm2d(2 * features), nn.ReLU(),
          nn.ConvTranspose2d(2 * features, features, 4, 2, 1, bias=False),
          nn.BatchNorm2d(features), nn.ReLU(), nn.ConvTranspose2d(features, 1, 4, 2, 1),
          nn.Tanh())

    def forward(self, z):
      return self.net(self.project(z).view(-1, 2 * features, 7, 7))

  g = Generator()
  d = nn.Sequential(
      nn.Conv2d(1, features, 4, 2, 1), nn.LeakyReLU(0.2),
      nn.Conv2d(features, 2 * features, 4, 2, 1, bias=False), nn.BatchNorm2d(2 * features),
      nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(7 * 7 * 2 * features, 1))
  if dcgan_init:
    for module in [*g.modules(), *d.modules()]:
      if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
          nn.init.zeros_(module.bias)
      elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
  del torch
  return g, d


# --- Twins of every model family, sized from the same config fields as jgen's models ------
# (bench/gpu_steps.py builds them from the configs and checks their parameter counts
# against jgen's). Images are NCHW; jgen's are NHWC, which changes no size.


def _activation(name: str):
  """jgen.models.layers.ACTIVATIONS as torch modules (jax's gelu is the tanh form)."""
  from torch import nn

  return {'relu': nn.ReLU, 'tanh': nn.Tanh, 'sigmoid': nn.Sigmoid, 'elu': nn.ELU,
          'silu': nn.SiLU, 'gelu': lambda: nn.GELU(approximate='tanh'),
          'leaky_relu': lambda: nn.LeakyReLU(0.01)}[name]()


def _downsampled(size: int, times: int) -> int:
  """jgen.models.layers.downsampled_size: after `times` stride-2 SAME convolutions."""
  for _ in range(times):
    size = -(-size // 2)
  return size


def _same_conv(in_channels: int, out_channels: int, kernel_size: int, stride: int,
               bias: bool = True):
  """nn.Conv2d with XLA's SAME padding, as jgen's `nn.Conv` pads: per spatial axis of size
  n, max((ceil(n / stride) - 1) * stride + kernel_size - n, 0) zeros in all, the odd one at
  the end. PyTorch's `padding` is symmetric: a 3x3 stride-2 convolution of a 28-pixel axis
  is padded (0, 1) by XLA, so `padding=1` would shift every output pixel by one input pixel.
  Symmetric cases (a 4x4 stride-2 convolution of an even size) use `padding` itself."""
  import torch.nn.functional as F
  from torch import nn

  class SameConv2d(nn.Conv2d):
    def forward(self, x):
      pads = []  # F.pad's order: (left, right, top, bottom).
      for n in (x.shape[-1], x.shape[-2]):
        total = max((-(-n // stride) - 1) * stride + kernel_size - n, 0)
        pads += [total // 2, total - total // 2]
      if pads[0] == pads[1] and pads[2] == pads[3]:
        return F.conv2d(x, self.weight, self.bias, self.stride, (pads[2], pads[0]))
      return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride)

  return SameConv2d(in_channels, out_channels, kernel_size, stride, bias=bias)


def mlp_encoder(image_shape, hidden_sizes, out_dim: int, activation: str = 'relu'):
  """jgen's `Encoder`: flatten, Dense + activation per hidden size, a linear code layer."""
  from torch import nn

  layers, size = [nn.Flatten()], image_shape[0] * image_shape[1] * image_shape[2]
  for h in hidden_sizes:
    layers += [nn.Linear(size, h), _activation(activation)]
    size = h
  return nn.Sequential(*layers, nn.Linear(size, out_dim))


def mlp_decoder(image_shape, hidden_sizes, latent_dim: int, activation: str = 'relu'):
  """jgen's `Decoder`: Dense + activation per hidden size, then logits of the image (NCHW)."""
  from torch import nn

  height, width, channels = image_shape
  layers, size = [], latent_dim
  for h in hidden_sizes:
    layers += [nn.Linear(size, h), _activation(activation)]
    size = h
  return nn.Sequential(*layers, nn.Linear(size, height * width * channels),
                       nn.Unflatten(1, (channels, height, width)))


def conv_encoder(image_shape, features, out_dim: int, activation: str = 'relu'):
  """jgen's `ConvEncoder`: 3x3 stride-2 SAME convolutions (`_same_conv`), a linear code."""
  from torch import nn

  height, width, channels = image_shape
  layers, c = [], channels
  for f in features:
    layers += [_same_conv(c, f, 3, 2), _activation(activation)]
    c = f
  n = len(features)
  return nn.Sequential(*layers, nn.Flatten(),
                       nn.Linear(_downsampled(height, n) * _downsampled(width, n) * c, out_dim))


def conv_decoder(image_shape, features, latent_dim: int, activation: str = 'relu'):
  """jgen's `ConvDecoder`: Dense to the smallest map, then per feature count (reversed) a
  3x3 convolution to 4x the channels + pixel shuffle (sub-pixel upsampling), a 3x3 logits
  convolution, cropped to the image. (PixelShuffle reads channel c * 4 + phase where jgen's
  depth_to_space reads phase * C + c: the same layer up to an order of the convolution's
  output channels, which bench/twin_weights.py maps.)"""
  import torch
  from torch import nn

  height, width, channels = image_shape
  n = len(features)
  h0, w0 = _downsampled(height, n), _downsampled(width, n)

  class ConvDecoder(nn.Module):
    def __init__(self):
      super().__init__()
      self.project = nn.Sequential(nn.Linear(latent_dim, h0 * w0 * features[-1]),
                                   _activation(activation),
                                   nn.Unflatten(1, (features[-1], h0, w0)))
      layers, c = [], features[-1]
      for f in reversed(features):
        layers += [nn.Conv2d(c, 4 * f, 3, 1, 1), nn.PixelShuffle(2), _activation(activation)]
        c = f
      self.up = nn.Sequential(*layers)
      self.logits = nn.Conv2d(c, channels, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
      return self.logits(self.up(self.project(z)))[:, :, :height, :width]

  return ConvDecoder()


def autoencoder(model_config, image_shape):
  """(encoder, decoder) of jgen's `mlp_autoencoder` / `conv_autoencoder` config (dropout 0)."""
  m = model_config
  if m.get('dropout', 0.0):
    raise ValueError('the torch twins have no dropout in autoencoders')
  if m.name == 'mlp_autoencoder':
    sizes = tuple(m.hidden_sizes)
    return (mlp_encoder(image_shape, sizes, m.latent_dim, m.activation),
            mlp_decoder(image_shape, sizes[::-1], m.latent_dim, m.activation))
  if m.name == 'conv_autoencoder':
    return (conv_encoder(image_shape, tuple(m.features), m.latent_dim, m.activation),
            conv_decoder(image_shape, tuple(m.features), m.latent_dim, m.activation))
  raise ValueError(f'no torch twin of autoencoder {m.name!r}')


def vae(model_config, image_shape):
  """(encoder to 2 * latent_dim, decoder) of jgen's `mlp_vae` / `conv_vae` config."""
  m = model_config
  if m.get('likelihood', 'bernoulli') != 'bernoulli':
    raise ValueError('the torch twins have the Bernoulli likelihood only')
  if m.name == 'mlp_vae':
    sizes = tuple(m.hidden_sizes)
    return (mlp_encoder(image_shape, sizes, 2 * m.latent_dim, m.activation),
            mlp_decoder(image_shape, sizes[::-1], m.latent_dim, m.activation))
  if m.name == 'conv_vae':
    return (conv_encoder(image_shape, tuple(m.features), 2 * m.latent_dim, m.activation),
            conv_decoder(image_shape, tuple(m.features), m.latent_dim, m.activation))
  raise ValueError(f'no torch twin of VAE {m.name!r}')


def mlp_gan(image_shape, generator_sizes=(1200, 1200), discriminator_sizes=(240, 240),
            maxout_pieces=5, dropout=0.5, input_dropout=0.2, latent_size=100):
  """jgen's `mlp_gan` (Goodfellow et al.): G ReLU layers -> tanh image; D input dropout,
  maxout layers (`maxout_pieces` consecutive units each) with dropout between, one logit.
  D returns (logits (B,), None, None)."""
  import torch
  from torch import nn

  height, width, channels = image_shape
  pixels = height * width * channels
  layers, size = [], latent_size
  for h in generator_sizes:
    layers += [nn.Linear(size, h), nn.ReLU()]
    size = h
  g = nn.Sequential(*layers, nn.Linear(size, pixels), nn.Tanh(),
                    nn.Unflatten(1, (channels, height, width)))

  class MaxoutDiscriminator(nn.Module):
    def __init__(self):
      super().__init__()
      self.input_dropout = nn.Dropout(input_dropout)
      sizes = [pixels, *discriminator_sizes]
      self.dense = nn.ModuleList(nn.Linear(a, b * maxout_pieces)
                                 for a, b in zip(sizes[:-1], sizes[1:], strict=True))
      self.dropout = nn.Dropout(dropout)
      self.logits = nn.Linear(sizes[-1], 1)

    def forward(self, x: torch.Tensor):
      h = self.input_dropout(x.flatten(1))
      for i, dense in enumerate(self.dense):
        h = dense(h)
        h = h.view(h.shape[0], -1, maxout_pieces).amax(-1)
        if i < len(self.dense) - 1:
          h = self.dropout(h)
      return self.logits(h)[:, 0], None, None

  return g, MaxoutDiscriminator()


def _norm(kind: str, channels: int, conv: bool):
  """jgen.models.gans._norm: batch norm (momentum 0.1 = jgen's decay 0.9; epsilon 1e-5 on
  both sides), layer norm over all of an example's features with per-channel scale and bias
  (GroupNorm with one group, as jgen's nn.LayerNorm(reduction_axes=(1, 2, 3))) and Flax's
  epsilon 1e-6 (PyTorch's default is 1e-5), or nothing."""
  from torch import nn

  if kind == 'batch':
    return (nn.BatchNorm2d if conv else nn.BatchNorm1d)(channels, momentum=0.1)
  if kind == 'layer':
    return nn.GroupNorm(1, channels, eps=1e-6) if conv else nn.LayerNorm(channels, eps=1e-6)
  if kind == 'none':
    return nn.Identity()
  raise ValueError(f'unknown norm {kind!r}')


def conv_gan(image_shape, *, features=64, num_resamples=0, kernel_size=4, latent_size=100,
             dense_size=0, norm='batch', discriminator_norm=None, leak=0.2, q_categories=0,
             q_continuous=0, q_hidden_size=128):
  """jgen's `ConvGenerator` and `ConvDiscriminator` (DCGAN, WGAN-GP's critic, InfoGAN with
  `dense_size` and a Q head), for any image shape: (generator, discriminator).

  G: [Dense(dense_size), norm, ReLU], Dense to a (base, base, features * 2^(n-1)) map, norm,
  ReLU, n - 1 stride-2 transposed convolutions halving the channels (norm, ReLU), one to the
  image's channels (bias), tanh, cropped. D: n stride-2 convolutions doubling the channels
  from `features` (norm after all but the first), LeakyReLU(`leak`), [Dense(dense_size),
  norm, LeakyReLU], a logit, and InfoGAN's Q head (Dense(q_hidden_size), norm, LeakyReLU,
  category logits, code means). No bias before batch norm. D returns (logits (B,),
  code_logits or None, code_mean or None).
  """
  import torch
  from torch import nn

  height, width, channels = image_shape
  n = num_resamples
  if not n:  # jgen.models.gans._num_resamples: a base map of about 4-7 pixels.
    size = min(height, width)
    while size > 7:
      size, n = -(-size // 2), n + 1
    n = max(n, 1)
  if kernel_size % 2:
    raise ValueError(f'the torch twins need an even kernel_size, got {kernel_size}')
  # Transposed convolutions: padding k/2 - 1 upsamples exactly 2x, as jgen's (whose kernel
  # is PyTorch's flipped; bench/twin_weights.py maps it).
  k, pad = kernel_size, kernel_size // 2 - 1
  d_norm = discriminator_norm or norm
  base_h, base_w = _downsampled(height, n), _downsampled(width, n)
  width0 = features * 2 ** (n - 1)

  class Generator(nn.Module):
    def __init__(self):
      super().__init__()
      bias = norm != 'batch'
      layers, size = [], latent_size
      if dense_size:
        layers += [nn.Linear(size, dense_size, bias=bias), _norm(norm, dense_size, False),
                   nn.ReLU()]
        size = dense_size
      layers += [nn.Linear(size, base_h * base_w * width0, bias=bias),
                 nn.Unflatten(1, (width0, base_h, base_w)), _norm(norm, width0, True), nn.ReLU()]
      c = width0
      for _ in range(n - 1):
        layers += [nn.ConvTranspose2d(c, c // 2, k, 2, pad, bias=bias),
                   _norm(norm, c // 2, True), nn.ReLU()]
        c //= 2
      layers += [nn.ConvTranspose2d(c, channels, k, 2, pad), nn.Tanh()]
      self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
      return self.net(z)[:, :, :height, :width]

  class Discriminator(nn.Module):
    def __init__(self):
      super().__init__()
      bias = d_norm != 'batch'
      layers, c, h, w = [], channels, height, width
      for i in range(n):
        f = features * 2 ** i
        layers.append(_same_conv(c, f, k, 2, bias=bias or i == 0))
        if i > 0:
          layers.append(_norm(d_norm, f, True))
        layers.append(nn.LeakyReLU(leak))
        c, h, w = f, _downsampled(h, 1), _downsampled(w, 1)
      layers.append(nn.Flatten())
      size = c * h * w
      if dense_size:
        layers += [nn.Linear(size, dense_size, bias=bias), _norm(d_norm, dense_size, False),
                   nn.LeakyReLU(leak)]
        size = dense_size
      self.trunk = nn.Sequential(*layers)
      self.logits = nn.Linear(size, 1)
      self.q = None
      if q_categories or q_continuous:
        self.q = nn.Sequential(nn.Linear(size, q_hidden_size, bias=bias),
                               _norm(d_norm, q_hidden_size, False), nn.LeakyReLU(leak))
        self.category = nn.Linear(q_hidden_size, q_categories) if q_categories else None
        self.code = nn.Linear(q_hidden_size, q_continuous) if q_continuous else None

    def forward(self, x: torch.Tensor):
      h = self.trunk(x)
      logits = self.logits(h)[:, 0]
      if self.q is None:
        return logits, None, None
      q = self.q(h)
      return (logits, self.category(q) if self.category is not None else None,
              self.code(q) if self.code is not None else None)

  return Generator(), Discriminator()


def gan(model_config, image_shape):
  """(generator, discriminator) of jgen's `mlp_gan` / `dcgan` / `infogan` config, and the
  latent's (noise_dim, noise, categories, continuous, noise_scale) as jgen's LatentSpec has
  them."""
  m = model_config
  if m.name == 'mlp_gan':
    latent = (m.noise_dim, m.get('noise', 'uniform'), 0, 0, 1.0)
    g, d = mlp_gan(image_shape, tuple(m.generator_sizes), tuple(m.discriminator_sizes),
                   m.maxout_pieces, m.dropout, m.input_dropout, m.noise_dim)
  elif m.name == 'dcgan':
    if m.get('upsampling', 'strided') not in ('strided', 'subpixel', 'transpose'):
      raise ValueError(f'unknown upsampling {m.upsampling!r}')
    latent = (m.noise_dim, m.get('noise', 'normal'), 0, 0, 1.0)
    g, d = conv_gan(image_shape, features=m.features, num_resamples=m.get('num_resamples', 0),
                    kernel_size=m.kernel_size, latent_size=m.noise_dim, norm=m.norm,
                    discriminator_norm=m.get('discriminator_norm', None))
  elif m.name == 'infogan':
    latent = (m.noise_dim, 'uniform', m.categories, m.continuous, m.get('noise_scale', 1.0))
    g, d = conv_gan(image_shape, features=m.features, num_resamples=m.get('num_resamples', 0),
                    kernel_size=m.get('kernel_size', 4),
                    latent_size=m.noise_dim + m.categories + m.continuous,
                    dense_size=m.dense_size, norm='batch', leak=m.leak,
                    q_categories=m.categories, q_continuous=m.continuous,
                    q_hidden_size=m.get('q_hidden_size', 128))
  else:
    raise ValueError(f'no torch twin of GAN {m.name!r}')
  return g, d, latent
