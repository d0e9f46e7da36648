"""The multimodal Perceiver IO model: a dict of modalities in, a dict of decoded modalities out."""

from collections.abc import Mapping

import keras
import numpy as np

from perceiver_keras import _checks, input_checks
from perceiver_keras.initialization import derive_seed, seed_initializers
from perceiver_keras.graph_call import CheckedCalls
from perceiver_keras.model import PresetSaving

_LAYER_ARGS = ("preprocessor", "encoder", "query", "decoder", "postprocessor")


@keras.saving.register_keras_serializable(package="perceiver_keras")
class MultimodalPerceiverIO(CheckedCalls, PresetSaving, keras.Model):
    """A functional Keras model from multimodal Perceiver IO parts, taking and returning dicts.

    Inputs: one tensor per modality of the preprocessor, named after it, (B, *expected_shape) (for
    video autoencoding "audio" (B, S, 1), "image" (B, T, H, W, 3), "label" (B, K)), and, for each of
    `subsampled_modalities`, an int tensor "<modality>_indices" (B, O_m): the flat indices of the
    points of that modality to decode (subsampled decoding; see `MultimodalQuery`). Outputs: the
    postprocessor's dict. Inputs are checked before Keras sees them, so that a missing modality or a
    tensor of the wrong shape raises a ValueError naming the modality and the shape it must have; so do
    an empty batch, modalities of different batch sizes, indices outside a modality's points and label
    values outside [0, 1] (values are checked on concrete arrays, as `PerceiverIO` does).

    Args:
        preprocessor: a `MultimodalPreprocessor`.
        encoder: a `PerceiverEncoder`.
        query: a `MultimodalQuery`.
        decoder: a `PerceiverDecoder`, run once over every modality's queries.
        postprocessor: a `MultimodalPostprocessor`.
        subsampled_modalities: modalities decoded at given indices only.
        seed: optional int; seeds the initial weights of every (unbuilt) part, as in `PerceiverIO`.
        check_finite: bool, also refuse NaN and infinite input values (off by default: it reads every
            input value), as in `PerceiverIO`.

    Example:
    >>> from perceiver_keras import (MultimodalPostprocessor, MultimodalPreprocessor, MultimodalQuery,
    ...     OneHotPreprocessor, PerceiverDecoder, PerceiverEncoder, TrainablePositionEncoding)
    >>> model = MultimodalPerceiverIO(
    ...     preprocessor=MultimodalPreprocessor({"label": OneHotPreprocessor(3)}),
    ...     encoder=PerceiverEncoder(4, 8, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
    ...     query=MultimodalQuery({"label": TrainablePositionEncoding(1, 6)}),
    ...     decoder=PerceiverDecoder(output_channels=8),
    ...     postprocessor=MultimodalPostprocessor({"label": 3}, {"label": (3,)}))
    >>> model({"label": keras.ops.ones((2, 3))})["label"].shape
    (2, 3)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.3.
    """

    def __init__(self, preprocessor, encoder, query, decoder, postprocessor, subsampled_modalities=(), seed=None,
                 check_finite=False, **kwargs):
        seed = _checks.seed("seed", seed)
        if seed is not None:  # before the parts are called, which builds them
            parts = dict(preprocessor=preprocessor, encoder=encoder, query=query, decoder=decoder,
                         postprocessor=postprocessor)
            for arg, part in parts.items():
                seed_initializers(part, derive_seed(seed, arg))
        subsampled_modalities = sorted(subsampled_modalities)
        decodable = set(query.queries) & set(postprocessor.output_channels)
        if not set(subsampled_modalities) <= decodable:
            raise ValueError(f"`subsampled_modalities` must be decoded modalities ({', '.join(sorted(decodable))}). "
                             f"Received: subsampled_modalities={subsampled_modalities}")
        modalities = {key: keras.Input(shape=layer.expected_shape, name=key)
                      for key, layer in preprocessor.modalities.items()}
        indices = {key: keras.Input(shape=(None,), dtype="int32", name=f"{key}_indices")
                   for key in subsampled_modalities}
        preprocessed = preprocessor(modalities)
        latents = encoder(preprocessed)
        outputs = decoder(query(preprocessed, indices=indices or None), latents)
        outputs = postprocessor(outputs, indices=indices or None)
        super().__init__(inputs={**modalities, **{f"{key}_indices": x for key, x in indices.items()}},
                         outputs=outputs, **kwargs)
        # Keras' own input check names inputs by position; `__call__` checks them by modality instead.
        self.input_spec = None
        self.preprocessor, self.encoder, self.query = preprocessor, encoder, query
        self.decoder, self.postprocessor = decoder, postprocessor
        self.subsampled_modalities = subsampled_modalities
        self.seed = seed
        self.check_finite = bool(check_finite)

    def input_rules(self):
        """name -> `input_checks.InputRule` of every model input."""
        from perceiver_keras.multimodal import OneHotPreprocessor

        rules = {}
        for key, layer in self.preprocessor.modalities.items():
            label = isinstance(layer, OneHotPreprocessor)
            rules[key] = input_checks.InputRule(
                layer.expected_shape, "float", low=0 if label else None, high=1 if label else None, high_closed=True,
                what="label values (one-hot or soft)" if label else "values")
        for key in self.subsampled_modalities:
            rules[f"{key}_indices"] = input_checks.InputRule(
                (None,), "int", low=0, high=self.query.num_positions[key], what=f"indices of the '{key}' points")
        return rules

    def check_inputs(self, inputs):
        """Raises a ValueError naming the input and its expected shape unless `inputs` fit the model."""
        if not isinstance(inputs, Mapping):
            raise ValueError(f"Model '{self.name}' takes a dict with the keys {sorted(self.input)}. "
                             f"Received: inputs of type {type(inputs).__name__}")
        unknown = sorted(set(inputs) - set(self.input))
        if unknown:
            raise ValueError(f"Model '{self.name}' has no input {unknown}. Expected the keys {sorted(self.input)}. "
                             f"Received: keys={sorted(inputs)}")
        self.preprocessor.check_inputs(inputs)
        for key in self.subsampled_modalities:
            name = f"{key}_indices"
            if name not in inputs or len(inputs[name].shape) != 2:
                shape = tuple(inputs[name].shape) if name in inputs else "missing"
                raise ValueError(f"Model '{self.name}' expected `{name}` of shape (batch, points): flat indices of "
                                 f"the '{key}' points to decode. Received: {name}.shape={shape}")
        input_checks.check(self.name, dict(inputs), self.input_rules(), check_finite=self.check_finite)

    def _check_arrays(self, x):
        """Whole arrays are checked once, before Keras batches them (inside its loop they are symbolic)."""
        if isinstance(x, Mapping) and all(isinstance(v, np.ndarray) for v in x.values()):
            self.check_inputs(x)

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable,
                  "subsampled_modalities": list(self.subsampled_modalities), "seed": self.seed,
                  "check_finite": self.check_finite}
        for arg in _LAYER_ARGS:
            config[arg] = keras.saving.serialize_keras_object(getattr(self, arg))
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for arg in _LAYER_ARGS:
            config[arg] = keras.saving.deserialize_keras_object(config[arg])
        return cls(**config)
