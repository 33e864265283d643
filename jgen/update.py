"""What every family's update does, in one place: per-device gradients, averaged over the
data axis, in the config's compute dtype, then the optimizer update and its norms.

A step that takes its gradients here cannot forget `parallel.per_device` (without it,
shard_map's transpose sums the gradients of replicated parameters over devices, and N
devices would train with N-times gradients) nor the `pmean` that averages them.

Mixed precision (`config.dtype`): parameters and optimizer state stay float32; the loss
function sees parameters cast to the compute dtype (bfloat16: activations and matrix
products in bfloat16), and its loss and gradients come back as float32. Evaluation and
sampling run in float32.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from jgen import parallel
from jgen.registry import ConfigError

DTYPES = {'float32': jnp.float32, 'bfloat16': jnp.bfloat16}


def compute_dtype(name: str):
  """The jnp dtype named by `config.dtype`, or a ConfigError naming the choices."""
  if name not in DTYPES:
    raise ConfigError(f'dtype={name!r} is unknown; known: {", ".join(DTYPES)} '
                      '(--config.dtype=bfloat16)')
  return DTYPES[name]


def cast(tree, dtype):
  """Floating-point leaves of `tree` as `dtype`; other leaves (integers, keys) unchanged."""
  def one(x):
    x = jnp.asarray(x)
    return x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x

  return jax.tree.map(one, tree)


def gradients(loss_fn: Callable, params, dtype=jnp.float32):
  """`((loss, aux), grads)` of `loss_fn(params) -> (loss, aux)` on this device's examples.

  `loss_fn` receives `params` cast to `dtype`; the loss, floating `aux` and the gradients
  (those averaged over `parallel.AXIS`) come back as float32.
  """
  def f(p):
    loss, aux = loss_fn(cast(p, dtype))
    return loss.astype(jnp.float32), cast(aux, jnp.float32)

  (loss, aux), grads = jax.value_and_grad(f, has_aux=True)(parallel.per_device(params))
  return (loss, aux), jax.lax.pmean(grads, parallel.AXIS)


def vjp(fn: Callable, params, dtype=jnp.float32):
  """`(out, pullback, aux)` of `fn(params) -> (out, aux)` as `gradients` treats it: `out`
  as float32, and `pullback(cotangent)` -> float32 gradients averaged over `parallel.AXIS`
  (a network whose output another loss differentiates: a GAN's generator)."""
  def f(p):
    out, aux = fn(cast(p, dtype))
    return cast(out, jnp.float32), aux

  out, pull, aux = jax.vjp(f, parallel.per_device(params), has_aux=True)
  return out, lambda cotangent: jax.lax.pmean(pull(cotangent)[0], parallel.AXIS), aux


def apply(tx: optax.GradientTransformation, params, opt_state, grads, suffix: str = ''):
  """One optimizer update: `(params, opt_state, norms)`; norms holds `l2_grads`,
  `l2_params` (after the update) and `l2_updates`, each name with `suffix`."""
  updates, opt_state = tx.update(grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  norms = {'l2_grads': optax.tree.norm(grads), 'l2_params': optax.tree.norm(new_params),
           'l2_updates': optax.tree.norm(updates)}
  return new_params, opt_state, {name + suffix: value for name, value in norms.items()}


def apply_to_state(state, grads):
  """`apply` on a single-network `TrainState`: (state with step + 1, norms)."""
  params, opt_state, norms = apply(state.tx, state.params, state.opt_state, grads)
  return state.replace(step=state.step + 1, params=params, opt_state=opt_state), norms
