r"""An autoencoder step's pieces, jgen against its PyTorch twin: where the step's time goes.

  python -m bench.ae_parts --config configs/ae_mnist.py

Both sides start from the same weights (bench/twin_weights.py), at the config's batch size.
Pieces: the loss forward; forward + backward to the parameters; the random shift of the
batch (`augment.max_shift`); one Adam update of every parameter; then the whole step.
Medians of interleaved rounds, ms; above 1 in the last column, jgen is faster. With the
matrix products' GFLOP (XLA's cost analysis), it prints each piece's GFLOP/s, so the
distance from bench/peak.py's matrix-product peak can be split into what the products
achieve and the time spent outside them.
"""

import argparse
import os


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', default='configs/ae_mnist.py')
  parser.add_argument('--rounds', type=int, default=7)
  parser.add_argument('--reps', type=int, default=10)
  args = parser.parse_args()
  from jgen import runtime

  runtime.set_cpu_defaults()
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  import jax
  import optax
  import torch

  from bench import twins
  from bench.__main__ import load_family_config
  from bench.gan_networks import _time
  from jgen import augment, losses, models

  config = load_family_config(args.config)  # As the suite times it (batch 128: PINNED).
  if config.family != 'autoencoder' or config.corrupt.name != 'none':
    raise SystemExit(f'error: {args.config} is not a plain autoencoder config; '
                     'use bench/gan_networks.py for GANs')
  shape, jgen_step, twin = twins.side_by_side(config)
  model = models.build_model(**config.model, image_shape=shape)
  params = jax.device_get(jgen_step.state.params)
  b = config.batch_size
  x = jax.random.uniform(jax.random.PRNGKey(1), (b, *shape))
  keys = jax.random.split(jax.random.PRNGKey(2), b)
  reconstruction = losses.get_reconstruction_loss(config.loss)

  def loss(p, x):
    logits = model.apply({'params': p}, x, train=True)
    return reconstruction(logits=logits, targets=x).mean()

  forward, grad = jax.jit(loss), jax.jit(jax.grad(loss))
  shift = jax.jit(lambda x, k: augment.random_shift(x, k, max(config.augment.max_shift, 1)))
  tx = optax.adam(config.optimizer.learning_rate)
  opt_state = tx.init(params)
  grads = jax.tree.map(lambda p: p * 0 + 1e-3, params)

  @jax.jit
  def adam(params, opt_state):
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  xt = torch.rand(b, shape[2], shape[0], shape[1])

  def t_forward():
    with torch.no_grad():
      twin.autoencoder_loss(xt, xt)

  def t_grad():
    twin.autoencoder_loss(xt, xt).backward()

  for p in twin._params(twin.nets):
    p.grad = torch.full_like(p, 1e-3)
  block = jax.block_until_ready
  pieces = {
      'forward': (lambda: block(forward(params, x)), t_forward),
      'forward + backward': (lambda: block(grad(params, x)), t_grad),
      'shift': (lambda: block(shift(x, keys)), lambda: twin._shift(xt, 1)),
      'Adam update': (lambda: block(adam(params, opt_state)), twin.opts[0].step),
  }
  flops = {'forward': forward.lower(params, x).compile().cost_analysis(),
           'forward + backward': grad.lower(params, x).compile().cost_analysis()}
  medians = _time(pieces, args.rounds, args.reps)
  jgen_step.compile()
  medians |= _time({'whole step': (lambda: jgen_step.run(1), lambda: twin.run(1))},
                   args.rounds, args.reps)
  flops['whole step'] = {'flops': jgen_step.flops}
  print('\nGFLOP/s (XLA cost analysis of each jitted piece, at the jgen and torch medians):')
  for name, cost in flops.items():
    cost = cost[0] if isinstance(cost, list) else cost
    gflop = cost['flops'] / 1e9
    a, t = medians[name]
    print(f'{name:26s} {gflop:6.3f} GFLOP  jgen {gflop / a * 1e3:6.1f}  torch '
          f'{gflop / t * 1e3:6.1f}')


if __name__ == '__main__':
  main()
