"""jgen: autoencoders and GANs side by side in JAX/Flax."""
