import keras

if keras.config.backend() == "jax":
    import jax

    # JAX compiles every eager op and every train step with XLA; on these toy tensors unoptimised
    # compilation is about twice as fast and the optimisations buy nothing.
    jax.config.update("jax_disable_most_optimizations", True)
