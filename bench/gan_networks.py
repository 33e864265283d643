r"""A GAN step's pieces, jgen against its PyTorch twin: each network forward and backward, and
each optimizer update, at the config's batch size, then the whole step.

  python -m bench.gan_networks --config configs/infogan_mnist.py:paper

Both sides start from the same weights (bench/twin_weights.py) and run in training mode
(batch statistics). Pieces: G forward; G forward + backward (to its parameters); D forward;
D forward + backward to its parameters (what a D update needs), and to its input as well
(what the G update needs); one Adam update of each network's parameters. Medians of
interleaved rounds, ms; above 1 in the last column, jgen is faster. The pieces say where a
step's time goes; the whole step also holds the latents, losses and EMA.
"""

import argparse
import os
import statistics
import time


def _time(pieces: dict, rounds: int, reps: int) -> dict:
  """Prints, and returns by piece, the (jgen, torch) medians in ms."""
  medians = {}
  print(f"{'piece':26s} {'jgen ms':>8s} {'torch ms':>9s} {'torch/jgen':>11s}")
  for name, sides in pieces.items():
    for side in sides * 2:
      side()
    times = ([], [])
    for r in range(rounds):
      for k in ((0, 1) if r % 2 == 0 else (1, 0)):
        start = time.perf_counter()
        for _ in range(reps):
          sides[k]()
        times[k].append((time.perf_counter() - start) / reps * 1e3)
    a, b = medians[name] = tuple(statistics.median(t) for t in times)
    print(f'{name:26s} {a:8.2f} {b:9.2f} {b / a:10.2f}x', flush=True)
  return medians


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--config', required=True)
  parser.add_argument('--rounds', type=int, default=7)
  parser.add_argument('--reps', type=int, default=5)
  args = parser.parse_args()
  from jgen import runtime

  runtime.set_cpu_defaults()
  os.environ.setdefault('JAX_PLATFORMS', 'cpu')
  import jax
  import optax
  import torch

  from bench import twins
  from bench.__main__ import ROOT
  from jgen import models
  from jgen.config import load_config

  config = load_config(str(ROOT / args.config), {'dtype': 'float32'})
  shape, jgen_step, twin = twins.side_by_side(config)
  model = models.build_model(**config.model, image_shape=shape, axis_name=None)
  state = jax.device_get(jgen_step.state)
  gen, disc = model.generator, model.discriminator
  b = config.batch_size
  z = jax.random.normal(jax.random.PRNGKey(0), (b, model.latent.size))
  x = jax.random.uniform(jax.random.PRNGKey(1), (b, *shape)) * 2 - 1

  def g_out(gp, z):
    variables = {'params': gp, 'batch_stats': state.g_batch_stats}
    return gen.apply(variables, z, train=True, mutable=['batch_stats'])[0]

  def d_sum(dp, x):
    variables = {'params': dp, 'batch_stats': state.d_batch_stats}
    out = disc.apply(variables, x, train=True, mutable=['batch_stats'])[0]
    return sum(out[k].sum() for k in ('logits', 'code_logits', 'code_mean') if k in out)

  g_fwd = jax.jit(g_out)
  g_grad = jax.jit(jax.grad(lambda gp, z: (g_out(gp, z) ** 2).sum()))
  d_fwd, d_grad = jax.jit(d_sum), jax.jit(jax.grad(d_sum))
  d_grad_x = jax.jit(jax.grad(d_sum, argnums=(0, 1)))

  def adam_update(tx, params):
    opt_state = tx.init(params)
    grads = jax.tree.map(lambda p: p * 0 + 1e-3, params)

    @jax.jit
    def update(params, opt_state):
      updates, opt_state = tx.update(grads, opt_state, params)
      return optax.apply_updates(params, updates), opt_state

    return lambda: jax.block_until_ready(update(params, opt_state))

  g_net, d_net = twin.nets
  zt = torch.randn(b, model.latent.size)
  xt = torch.rand(b, shape[2], shape[0], shape[1]) * 2 - 1

  def t_d_sum(x):
    return sum(o.sum() for o in d_net(x) if o is not None)

  def t_g_grad():
    (g_net(zt) ** 2).sum().backward()

  def t_d_grad():
    t_d_sum(xt).backward()

  def t_d_grad_x():
    t_d_sum(xt.clone().requires_grad_(True)).backward()

  def no_grad(fn):
    def run():
      with torch.no_grad():
        fn()
    return run

  for p in (*g_net.parameters(), *d_net.parameters()):
    p.grad = torch.full_like(p, 1e-3)
  opt_g, opt_d = twin.opts
  g_cfg, d_cfg = config.g_optimizer, config.d_optimizer
  adam = {k: dict(b1=c.get('b1', 0.9), b2=c.get('b2', 0.999), eps=c.get('eps', 1e-8))
          for k, c in (('g', g_cfg), ('d', d_cfg))}
  block = jax.block_until_ready
  _time({
      'G forward': (lambda: block(g_fwd(state.g_params, z)), no_grad(lambda: g_net(zt))),
      'G forward + backward': (lambda: block(g_grad(state.g_params, z)), t_g_grad),
      'D forward': (lambda: block(d_fwd(state.d_params, x)), no_grad(lambda: d_net(xt))),
      'D fwd + bwd (params)': (lambda: block(d_grad(state.d_params, x)), t_d_grad),
      'D fwd + bwd (params, x)': (lambda: block(d_grad_x(state.d_params, x)), t_d_grad_x),
      'G Adam update': (adam_update(optax.adam(g_cfg.learning_rate, **adam['g']),
                                    state.g_params), opt_g.step),
      'D Adam update': (adam_update(optax.adam(d_cfg.learning_rate, **adam['d']),
                                    state.d_params), opt_d.step),
  }, args.rounds, args.reps)
  jgen_step.compile()
  _time({'whole step': (lambda: jgen_step.run(1), lambda: twin.run(1))}, args.rounds, 2)


if __name__ == '__main__':
  main()
