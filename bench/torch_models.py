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
