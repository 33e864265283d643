"""Train states: explicit pytrees holding everything a step reads or writes."""

import jax
from flax.training import train_state


class TrainState(train_state.TrainState):
  """A single-network state (autoencoders, VAEs).

  Attributes:
    rng: the run's base PRNG key (raw uint32); a step folds in its step number, so the
      randomness of step `s` depends only on (rng, s) and survives a resume exactly.
  """

  rng: jax.Array
