"""Multimodal adapters: several modalities padded to one width and concatenated, in and out.

The modalities are always taken in sorted name order (for video autoencoding: audio, image, label),
as the reference does; every per-modality argument is a dict keyed by modality name.
"""

import math
from collections.abc import Mapping

import keras
from keras import ops

from perceiver_keras import _checks
from perceiver_keras.initialization import clone_initializer, reference_initializer
from perceiver_keras.media import check_input_shape


def _serialize(layers):
    return {name: keras.saving.serialize_keras_object(layer) for name, layer in layers.items()}


def _deserialize(config, key):
    config[key] = {name: keras.saving.deserialize_keras_object(c) for name, c in config[key].items()}
    return config


def _sorted_dict(name, value):
    if not isinstance(value, Mapping) or not value:
        raise ValueError(f"`{name}` must be a non-empty dict keyed by modality. Received: {name}={value!r}")
    return {key: value[key] for key in sorted(value)}


def _check_indices(layer, indices, allowed):
    unknown = sorted(set(indices or {}) - set(allowed))
    if unknown:
        raise ValueError(f"Layer '{layer}' has no modality {unknown} to subsample. Expected some of: "
                         f"{sorted(allowed)}. Received: indices keys={sorted(indices)}")


@keras.saving.register_keras_serializable(package="perceiver_keras")
class OneHotPreprocessor(keras.layers.Layer):
    """A label (B, K), one-hot or soft, as one input of K channels: (B, 1, K); no position features.

    Args:
        num_classes: int K.

    Example:
    >>> OneHotPreprocessor(5)(keras.ops.ones((2, 5))).shape
    (2, 1, 5)
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = _checks.positive_int("num_classes", num_classes)

    expected_shape = property(lambda self: (self.num_classes,))
    num_positions = 1
    output_channels = property(lambda self: self.num_classes)

    def check_input_shape(self, shape, arg="inputs"):
        check_input_shape(self.name, arg, shape, self.expected_shape, "classes")

    def call(self, inputs):
        self.check_input_shape(inputs.shape)
        return ops.expand_dims(inputs, 1)

    def compute_output_shape(self, inputs_shape):
        return (inputs_shape[0], 1, self.num_classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="perceiver_keras")
class MultimodalPreprocessor(keras.layers.Layer):
    """Preprocesses each modality, pads each to a common width and concatenates them: (B, M, C).

    Each modality's array (B, M_m, C_m) gets a learned padding vector of its own, (1, C - C_m),
    repeated at every position, where C = max(C_m) + `min_padding_size` (704 for video
    autoencoding); the arrays are concatenated in sorted modality order, M = sum(M_m).

    Masking, as the reference's `mask_probs`: every modality in `mask_probabilities` has a learned
    mask token (1, C), frozen where the probability is 0. In training, each of the modality's
    positions is replaced by the token with that probability, independently per example and
    position. Outside training, a modality of probability 1 is always replaced (the released video
    autoencoder never sees its label: it classifies from video and audio) and any other is never
    replaced. A model trained with label probability p < 1 becomes a classifier when rebuilt with
    probability 1 and given the same weights (`set_weights`: the order does not depend on p).

    Args:
        modalities: dict name -> adapter layer with `expected_shape`, `num_positions`,
            `output_channels` and `check_input_shape(shape, arg)` (`VideoPreprocessor`,
            `AudioPreprocessor`, `OneHotPreprocessor`).
        mask_probabilities: optional dict name -> probability in [0, 1].
        min_padding_size: int, padding channels of the widest modality.
        padding_initializer: initializer of the padding vectors and mask tokens, cloned for each
            (default: normal, stddev 0.02, as the reference).
        seed: optional int, seed of the training-time masks.

    Call arguments:
        inputs: dict name -> tensor (B, *expected_shape) for every modality. training: bool.

    Example:
    >>> prep = MultimodalPreprocessor({"label": OneHotPreprocessor(3), "other": OneHotPreprocessor(5)})
    >>> prep({"label": keras.ops.ones((2, 3)), "other": keras.ops.ones((2, 5))}).shape
    (2, 2, 7)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.3.
    """

    def __init__(self, modalities, mask_probabilities=None, min_padding_size=2, padding_initializer=None, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.modalities = _sorted_dict("modalities", modalities)
        self.mask_probabilities = {key: float(p) for key, p in sorted((mask_probabilities or {}).items())}
        for key, p in self.mask_probabilities.items():
            if key not in self.modalities or not 0.0 <= p <= 1.0:
                raise ValueError(f"`mask_probabilities` must map modalities ({', '.join(self.modalities)}) to "
                                 f"probabilities in [0, 1]. Received: mask_probabilities={mask_probabilities!r}")
        self.min_padding_size = _checks.positive_int("min_padding_size", min_padding_size)
        self.padding_initializer = _checks.initializer("padding_initializer", padding_initializer,
                                                        reference_initializer)
        self.seed = _checks.seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    @property
    def output_channels(self):
        """The common width C."""
        return max(layer.output_channels for layer in self.modalities.values()) + self.min_padding_size

    @property
    def num_positions(self):
        """Dict name -> M_m, the positions of each modality."""
        return {key: layer.num_positions for key, layer in self.modalities.items()}

    def check_inputs(self, inputs):
        """Raises a ValueError naming the modality and its expected shape unless `inputs` fit."""
        if not isinstance(inputs, Mapping):
            raise ValueError(f"Layer '{self.name}' expected a dict with the modalities {list(self.modalities)}. "
                             f"Received: inputs of type {type(inputs).__name__}")
        for key, layer in self.modalities.items():
            if key not in inputs:
                expected = ", ".join(map(str, layer.expected_shape))
                raise ValueError(f"Layer '{self.name}' is missing the modality '{key}': expected `{key}` of shape "
                                 f"(batch, {expected}). Received: keys={sorted(inputs)}")
            layer.check_input_shape(tuple(inputs[key].shape), arg=key)

    def build(self, inputs_shape):
        self.check_inputs({key: keras.KerasTensor(shape) for key, shape in inputs_shape.items()})
        self.padding, self.mask_tokens = {}, {}
        for key, layer in self.modalities.items():
            if not layer.built:
                layer.build(inputs_shape[key])
            self.padding[key] = self.add_weight(
                name=f"{key}_padding", shape=(1, self.output_channels - layer.output_channels),
                initializer=clone_initializer(self.padding_initializer, f"{key}_padding"),
            )
        for key, p in self.mask_probabilities.items():
            self.mask_tokens[key] = self.add_weight(
                name=f"{key}_mask_token", shape=(1, self.output_channels),
                initializer=clone_initializer(self.padding_initializer, f"{key}_mask_token"),
            )
            # A token of probability 0 is never used: frozen, but kept so that checkpoints holding it load.
            # Frozen after creation, so that the weights keep one order whatever the probabilities.
            self.mask_tokens[key].trainable = p > 0.0

    def call(self, inputs, training=None):
        self.check_inputs(inputs)
        arrays = []
        for key, layer in self.modalities.items():
            x = layer(inputs[key])
            batch, positions = ops.shape(x)[0], layer.num_positions
            x = _checks.append_channels(x, ops.cast(self.padding[key], x.dtype))
            p = self.mask_probabilities.get(key, 0.0)
            token = ops.cast(self.mask_tokens[key], x.dtype)[None] if key in self.mask_tokens else None
            if p == 1.0:
                x = _checks.broadcast_batch(token, (batch, positions, self.output_channels))
            elif training and p > 0.0:
                masked = keras.random.uniform((batch, positions, 1), seed=self.seed_generator) < p
                x = ops.where(masked, token, x)
            arrays.append(x)
        return ops.concatenate(arrays, axis=1)

    def compute_output_shape(self, inputs_shape):
        batch = next(iter(inputs_shape.values()))[0]
        return (batch, sum(self.num_positions.values()), self.output_channels)

    def get_config(self):
        config = super().get_config()
        config.update(modalities=_serialize(self.modalities), mask_probabilities=self.mask_probabilities,
                      min_padding_size=self.min_padding_size, seed=self.seed,
                      padding_initializer=keras.initializers.serialize(self.padding_initializer))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize(dict(config), "modalities"))


@keras.saving.register_keras_serializable(package="perceiver_keras")
class MultimodalQuery(keras.layers.Layer):
    """Each modality's decoder queries, padded to a common width and concatenated: (B, O, E).

    Modality m gives O_m queries of E_m channels (all its points, or those `indices[m]` selects),
    padded with a learned vector (1, E - E_m), E = max(E_m) + `min_padding_size` (1026 for video
    autoencoding); concatenated in sorted modality order, O = sum(O_m). One decoder then
    cross-attends with all of them at once.

    Args:
        queries: dict name -> query provider called as `provider(inputs, indices=...)`, with
            `num_positions` and `output_channels` (`FourierQuery`, `TrainablePositionEncoding`).
        min_padding_size: int, padding channels of the widest modality.
        padding_initializer: initializer of the padding vectors, cloned for each (default: normal,
            stddev 0.02, as the reference).

    Call arguments:
        inputs: any tensor whose first axis is the batch.
        indices: optional dict name -> int tensor (B, O_m) of flat indices of the points to decode;
            modalities left out are decoded at all their points.

    Example:
    >>> from perceiver_keras import FourierQuery
    >>> query = MultimodalQuery({"audio": FourierQuery(8, 2), "image": FourierQuery((2, 4), 2)})
    >>> query(keras.ops.zeros((3, 1)), indices={"image": keras.ops.array([[0, 7]] * 3)}).shape
    (3, 10, 12)
    """

    def __init__(self, queries, min_padding_size=2, padding_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.queries = _sorted_dict("queries", queries)
        self.min_padding_size = _checks.positive_int("min_padding_size", min_padding_size)
        self.padding_initializer = _checks.initializer("padding_initializer", padding_initializer,
                                                        reference_initializer)

    @property
    def output_channels(self):
        """The common width E."""
        return max(query.output_channels for query in self.queries.values()) + self.min_padding_size

    @property
    def num_positions(self):
        """Dict name -> O_m, the number of points of each modality."""
        return {key: query.num_positions for key, query in self.queries.items()}

    def build(self, inputs_shape, indices_shape=None):
        _check_indices(self.name, indices_shape, self.queries)
        self.padding = {}
        for key, query in self.queries.items():
            if not query.built:
                query.build(inputs_shape)
            self.padding[key] = self.add_weight(
                name=f"{key}_padding", shape=(1, self.output_channels - query.output_channels),
                initializer=clone_initializer(self.padding_initializer, f"{key}_padding"),
            )

    def call(self, inputs, indices=None):
        _check_indices(self.name, indices, self.queries)
        arrays = []
        for key, query in self.queries.items():
            x = query(inputs, indices=(indices or {}).get(key))
            arrays.append(_checks.append_channels(x, ops.cast(self.padding[key], x.dtype)))
        return ops.concatenate(arrays, axis=1)

    def compute_output_shape(self, inputs_shape, indices_shape=None):
        lengths = [(indices_shape or {}).get(key, (None, n))[1] for key, n in self.num_positions.items()]
        return (inputs_shape[0], None if None in lengths else sum(lengths), self.output_channels)

    def get_config(self):
        config = super().get_config()
        config.update(queries=_serialize(self.queries), min_padding_size=self.min_padding_size,
                      padding_initializer=keras.initializers.serialize(self.padding_initializer))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**_deserialize(dict(config), "queries"))


@keras.saving.register_keras_serializable(package="perceiver_keras")
class MultimodalPostprocessor(keras.layers.Layer):
    """Splits decoder outputs (B, O, E) by modality and applies a linear head to each: a dict of outputs.

    Modality m owns O_m consecutive outputs (sorted modality order, as `MultimodalQuery`): all its
    points, prod(output_shapes[m]) / output_channels[m], laid out as (B, *output_shapes[m]); or, when
    `indices[m]` selects O_m points, (B, O_m, output_channels[m]). For video autoencoding: image
    (B, T, H, W, 3) from one RGB value per pixel, audio (B, S, 1) from 16 samples per patch, label
    (B, K) from one query: the reference's projection, audio and classification postprocessors.
    Outputs come out in the variable dtype (float32 under mixed precision).

    Args:
        output_channels: dict name -> int, channels of each point's head.
        output_shapes: dict name -> tuple, the layout of all points (without the batch).
        kernel_initializer: initializer of the heads' kernels, cloned for each (default: normal,
            stddev 0.02, as the reference; biases start at 0).

    Call arguments:
        inputs: (B, O, E). indices: optional dict name -> (B, O_m) for the subsampled modalities.

    Example:
    >>> post = MultimodalPostprocessor({"audio": 4, "label": 3}, {"audio": (8, 1), "label": (3,)})
    >>> {k: v.shape for k, v in post(keras.ops.ones((2, 3, 6))).items()}
    {'audio': (2, 8, 1), 'label': (2, 3)}
    """

    def __init__(self, output_channels, output_shapes, kernel_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.output_channels = _sorted_dict("output_channels", output_channels)
        self.output_shapes = {key: tuple(shape) for key, shape in _sorted_dict("output_shapes", output_shapes).items()}
        if set(self.output_shapes) != set(self.output_channels):
            raise ValueError("`output_channels` and `output_shapes` need the same modalities. Received: "
                             f"output_channels={output_channels!r}, output_shapes={output_shapes!r}")
        for key, channels in self.output_channels.items():
            _checks.positive_int(f"output_channels['{key}']", channels)
            if math.prod(self.output_shapes[key]) % channels:
                raise ValueError(f"`output_shapes['{key}']` must hold a whole number of points of "
                                 f"{channels} channels. Received: output_shapes={output_shapes!r}")
        self.kernel_initializer = _checks.initializer("kernel_initializer", kernel_initializer, reference_initializer)

    @property
    def num_positions(self):
        """Dict name -> O_m, the number of points of each modality."""
        return {key: math.prod(self.output_shapes[key]) // c for key, c in self.output_channels.items()}

    def build(self, inputs_shape, indices_shape=None):
        _checks.tensor_shape(self.name, "inputs", inputs_shape, 3)
        _check_indices(self.name, indices_shape, self.output_channels)
        self.heads = {}
        for key, channels in self.output_channels.items():
            self.heads[key] = keras.layers.Dense(
                channels, kernel_initializer=clone_initializer(self.kernel_initializer, key), name=key,
                dtype=self.dtype_policy,
            )
            self.heads[key].build((None, None, inputs_shape[-1]))

    def call(self, inputs, indices=None):
        _checks.tensor_shape(self.name, "inputs", inputs.shape, 3)
        _check_indices(self.name, indices, self.output_channels)
        indices, outputs, start = indices or {}, {}, 0
        for key, head in self.heads.items():
            size = ops.shape(indices[key])[1] if key in indices else self.num_positions[key]
            x = ops.cast(head(inputs[:, start:start + size]), self.variable_dtype)
            start = start + size
            outputs[key] = x if key in indices else ops.reshape(x, (-1, *self.output_shapes[key]))
        return outputs

    def compute_output_shape(self, inputs_shape, indices_shape=None):
        indices_shape = indices_shape or {}
        return {key: (inputs_shape[0], indices_shape[key][1], c) if key in indices_shape
                else (inputs_shape[0], *self.output_shapes[key]) for key, c in self.output_channels.items()}

    def get_config(self):
        config = super().get_config()
        config.update(output_channels=self.output_channels,
                      output_shapes={key: list(shape) for key, shape in self.output_shapes.items()},
                      kernel_initializer=keras.initializers.serialize(self.kernel_initializer))
        return config
