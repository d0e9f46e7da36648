"""Initial weights: the reference's scheme, one initializer per weight, and model-level seeds.

The scheme is transformers' (`PerceiverPreTrainedModel._init_weights`, `initializer_range` = 0.02):
every dense and convolution kernel, token and position embedding, latent array, trainable query,
modality padding and mask token is drawn from an untruncated normal distribution of mean 0 and
standard deviation 0.02; biases start at 0; LayerNorm and BatchNorm scales at 1 and offsets at 0
(BatchNorm's moving mean 0 and variance 1). Keras' own defaults already give biases and norms those
values, so only the random weights need `reference_initializer()`.

Keras 3 draws the same values every time one unseeded initializer instance is called (the instance
fixes a seed when it is made), so no two weights may share an instance: each sub-layer and each
weight gets its own from `clone_initializer`, as `keras.layers.MultiHeadAttention` does. A seeded
initializer cloned from its config would keep its seed, so a seeded clone gets a seed derived from
the original's and the weight's (or sub-layer's) name: a layer given `RandomNormal(0.02, seed=1)`
starts the same in every build, and no two of its weights are equal. `seed_initializers` seeds a whole
unbuilt layer from one int, which is how `PerceiverIO(seed=...)` makes a model reproducible.
"""

import hashlib
from collections.abc import Mapping

import keras

from perceiver_keras import _checks

INITIALIZER_RANGE = 0.02
"""Standard deviation of every random initial weight (transformers' `PerceiverConfig.initializer_range`)."""


def reference_initializer(seed=None):
    """A new `RandomNormal(mean=0, stddev=0.02)`: the reference's initializer of every random weight.

    Untruncated, as torch's `normal_`. Layers call this for each argument left as None.
    """
    return keras.initializers.RandomNormal(mean=0.0, stddev=INITIALIZER_RANGE, seed=seed)


def derive_seed(seed, *keys):
    """A seed in [0, 2**31) determined by `seed` and `keys` (names or indices), the same in every process."""
    text = "/".join(str(part) for part in (int(seed), *keys))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF


def _seed_of(initializer):
    return initializer.get_config().get("seed") if isinstance(initializer, keras.initializers.Initializer) else None


def clone_initializer(initializer, key):
    """A fresh instance of `initializer` for the sub-layer or weight called `key`.

    Unseeded: a new instance from its config, with a new seed of its own. Seeded with an int: the
    same initializer seeded with `derive_seed(seed, key)`. An initializer drawing from a
    `keras.random.SeedGenerator` (new values on each call) and a plain function are returned as they are.
    """
    if not isinstance(initializer, keras.initializers.Initializer):
        return initializer
    if isinstance(getattr(initializer, "seed", None), keras.random.SeedGenerator):
        return initializer
    config = initializer.get_config()
    if isinstance(config.get("seed"), int):
        config["seed"] = derive_seed(config["seed"], key)
    return initializer.__class__.from_config(config)


def _is_unseeded_random(initializer):
    return (isinstance(initializer, keras.initializers.Initializer) and "seed" in initializer.get_config()
            and _seed_of(initializer) is None)


def seed_initializers(layer, seed):
    """Seeds every unseeded random initializer of an unbuilt `layer`, and of the layers it holds, from `seed`.

    Each attribute named `initializer` or `*_initializer` gets a seed derived from `seed` and the
    attribute's name; each layer held in an attribute (or in a dict attribute, as the multimodal
    modalities) is seeded in turn with a seed derived from `seed` and the attribute (and key). The
    layers then clone these per weight (`clone_initializer`), so that every weight gets its own seed.
    Initializers given with a seed keep it. The weights are created when the layer is built: seeding
    a built layer changes its config, not its weights.

    Args:
        layer: a `keras.layers.Layer`.
        seed: int, or None to leave `layer` as it is.
    """
    seed = _checks.seed("seed", seed)
    if seed is None:
        return
    for name, value in sorted(vars(layer).items()):
        if name.startswith("_"):
            continue
        if name == "initializer" or name.endswith("_initializer"):
            if _is_unseeded_random(value):
                config = {**value.get_config(), "seed": derive_seed(seed, name)}
                setattr(layer, name, value.__class__.from_config(config))
        elif isinstance(value, keras.layers.Layer):
            seed_initializers(value, derive_seed(seed, name))
        elif isinstance(value, Mapping):
            for key, item in sorted(value.items()):
                if isinstance(item, keras.layers.Layer):
                    seed_initializers(item, derive_seed(seed, name, key))
