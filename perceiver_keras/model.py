"""The generic Perceiver IO model: preprocessor -> encoder -> decoder(queries) -> postprocessor."""

import keras
import numpy as np

from perceiver_keras import _checks, input_checks
from perceiver_keras.graph_call import CheckedCalls
from perceiver_keras.initialization import derive_seed, seed_initializers

_LAYER_ARGS = ("encoder", "decoder", "query", "preprocessor", "postprocessor")


class PresetSaving:
    """`save_to_preset` of `PerceiverIO` and `MultimodalPerceiverIO`: the model as its keras-hub task's preset."""

    def save_to_preset(self, preset_dir, preprocessor=None, metadata=None):
        """Writes the model as a keras-hub preset to `preset_dir`, all or nothing.

        The preset holds config.json (a `PerceiverBackbone`), task.json, model.weights.h5 and
        task.weights.h5, the keras-hub preprocessor's config with its tokenizer's or image converter's,
        and metadata.json; `keras_hub.models.<Task>.from_preset(preset_dir)` rebuilds the model with equal
        outputs (`perceiver_keras.hub.to_task` says which task). Imports keras_hub.

        Args:
            preset_dir: the folder; one that already holds a preset is replaced.
            preprocessor: the keras-hub preprocessor saved with the model; default the task's own, its
                image converter built from `metadata["image_converter"]` (e.g. {"scale": ..., "offset": ...}).
            metadata: JSON-able entries for metadata.json (under "perceiver_keras"); default
                `self.preset_metadata`, which `zoo.create_model` sets (preset, dataset, normalisation).
        """
        from perceiver_keras import hub  # keras_hub is imported only when presets are used

        metadata = dict(getattr(self, "preset_metadata", None) or {}) if metadata is None else dict(metadata)
        task = hub.to_task(self, preprocessor, image_converter=metadata.get("image_converter"))
        task.save_to_preset(preset_dir, metadata=metadata)


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverIO(CheckedCalls, PresetSaving, keras.Model):
    """A functional Keras model assembled from Perceiver IO parts.

    A task is new parts (preprocessor, query provider, postprocessor), not a new class: the
    model's config is its constructor arguments, so `PerceiverIO.from_config(m.get_config())`
    and `.keras` files round-trip.

    Inputs: one tensor (B, *inputs_shape), or, when a padding mask or output indices are used,
    a dict {input_name: (B, *inputs_shape), "padding_mask": (B, M), "output_indices": (B, O)}.
    The preprocessor maps the input to (B, M, C); the mask indexes its M positions.

    Args:
        encoder: a `PerceiverEncoder`.
        decoder: a `PerceiverDecoder`.
        query: a query provider called as `query(preprocessed, indices=...)` -> (B, O, E):
            `TrainablePositionEncoding`, `FourierPositionEncoding` or `InputQuery`.
        inputs_shape: tuple, the input's shape without the batch axis.
        preprocessor: optional layer, input -> (B, M, C).
        postprocessor: optional layer, decoder output (B, O, E) -> model output.
        input_dtype: str, dtype of the main input.
        input_name: str, name of the main input.
        use_padding_mask: bool, add a "padding_mask" input (B, M): 1 for inputs to attend to.
        use_output_indices: bool, add an "output_indices" int input (B, O) selecting which
            queries are decoded (subsampled decoding).
        tie_embeddings: bool, turn the decoder output into logits with the preprocessor's own
            embedding, `preprocessor(outputs, reverse=True)` (e.g. `TextPreprocessor`), before the
            postprocessor: the masked language model's tied input/output embedding.
        seed: optional int. Seeds the unseeded random initializers of every (unbuilt) part, each
            weight with a seed of its own derived from it and the weight's place in the model
            (`perceiver_keras.initialization.seed_initializers`): two models built with the same seed
            on one backend start bit-identical, and no global random state is touched. None: each
            initializer takes a seed from Python's `random` (which `keras.utils.set_random_seed` fixes).
        check_finite: bool, also refuse NaN and infinite input values (off by default: it reads every
            input). Shapes, token ids, padding masks and output indices are always checked at the
            model's entry (`perceiver_keras.input_checks`), values whenever they are concrete arrays.

    Example:
    >>> from perceiver_keras import PerceiverEncoder, PerceiverDecoder, TrainablePositionEncoding
    >>> model = PerceiverIO(
    ...     encoder=PerceiverEncoder(8, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
    ...     decoder=PerceiverDecoder(output_channels=3),
    ...     query=TrainablePositionEncoding(index_dims=1, encoding_channels=16),
    ...     inputs_shape=(20, 5))
    >>> model(keras.ops.ones((2, 20, 5))).shape
    (2, 1, 3)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795.
    """

    check_training_calls = False  # fit checks whole arrays once (_check_arrays); its steps are not re-checked

    def __init__(self, encoder, decoder, query, inputs_shape, preprocessor=None, postprocessor=None,
                 input_dtype="float32", input_name="inputs", use_padding_mask=False, use_output_indices=False,
                 tie_embeddings=False, seed=None, check_finite=False, **kwargs):
        seed = _checks.seed("seed", seed)
        if seed is not None:  # before the parts are called, which builds them
            parts = dict(encoder=encoder, decoder=decoder, query=query, preprocessor=preprocessor,
                         postprocessor=postprocessor)
            for arg, part in parts.items():
                if part is not None:
                    seed_initializers(part, derive_seed(seed, arg))
        inputs_shape = tuple(inputs_shape)
        if not inputs_shape:
            raise ValueError(f"`inputs_shape` must have at least one axis. Received: inputs_shape={inputs_shape}")
        main = keras.Input(shape=inputs_shape, dtype=input_dtype, name=input_name)
        model_inputs = {input_name: main}
        preprocessed = preprocessor(main) if preprocessor is not None else main
        _checks.tensor_shape(self.__class__.__name__, "preprocessed inputs", preprocessed.shape, 3)
        padding_mask = output_indices = None
        if use_padding_mask:
            # As long as the preprocessed array (M), so that a mask of the wrong length is refused.
            padding_mask = keras.Input(shape=(preprocessed.shape[1],), dtype="int32", name="padding_mask")
            model_inputs["padding_mask"] = padding_mask
        if use_output_indices:
            output_indices = keras.Input(shape=(None,), dtype="int32", name="output_indices")
            model_inputs["output_indices"] = output_indices

        latents = encoder(preprocessed, input_mask=padding_mask)
        queries = query(preprocessed, indices=output_indices)
        outputs = decoder(queries, latents)
        if tie_embeddings:
            if preprocessor is None:
                raise ValueError("`tie_embeddings=True` needs a preprocessor with a reverse call (e.g. "
                                 "TextPreprocessor(output_bias=True)). Received: preprocessor=None")
            outputs = preprocessor(outputs, reverse=True)
        if postprocessor is not None:
            outputs = postprocessor(outputs)
        super().__init__(inputs=model_inputs if len(model_inputs) > 1 else main, outputs=outputs, **kwargs)

        self.encoder, self.decoder, self.query = encoder, decoder, query
        self.preprocessor, self.postprocessor = preprocessor, postprocessor
        self.inputs_shape, self.main_input_dtype, self.input_name = inputs_shape, input_dtype, input_name
        self.use_padding_mask, self.use_output_indices = bool(use_padding_mask), bool(use_output_indices)
        self.tie_embeddings = bool(tie_embeddings)
        self.seed = seed
        self.check_finite = bool(check_finite)
        self._mask_length = preprocessed.shape[1]
        # Keras' own input check names inputs by position; `__call__` checks them by name instead.
        self.input_spec = None

    def input_rules(self):
        """name -> `input_checks.InputRule` of every model input."""
        vocab = getattr(self.preprocessor, "vocab_size", None)
        floating = "float" in str(self.main_input_dtype)
        rules = {self.input_name: input_checks.InputRule(
            self.inputs_shape, "float" if floating else "int", low=None if vocab is None else 0, high=vocab,
            what="token ids" if vocab is not None else "values")}
        if self.use_padding_mask:
            rules["padding_mask"] = input_checks.InputRule(
                (self._mask_length,), "int", binary=True, what="mask values",
                same_shape_as=self.input_name if vocab is not None else None)
        if self.use_output_indices:
            rules["output_indices"] = input_checks.InputRule(
                (None,), "int", low=0, high=getattr(self.query, "num_positions", None), what="output indices")
        return rules

    def check_inputs(self, inputs):
        """Raises a ValueError naming the input, the expected and the received value unless `inputs` fit."""
        input_checks.check(self.name, inputs, self.input_rules(), self.input_name, self.check_finite)

    def _check_arrays(self, x):
        """Whole arrays are checked once, before Keras batches them (a tf.data pipeline is not read here)."""
        if isinstance(x, np.ndarray) or (isinstance(x, dict) and all(isinstance(v, np.ndarray) for v in x.values())):
            self.check_inputs(x)
        elif isinstance(x, (list, tuple)) and any(isinstance(v, (str, bytes)) for v in x):
            # Keras would say only "Unrecognized data type"; text must be tokenised first.
            names = sorted(self.input_rules())
            raise ValueError(f"Model '{self.name}' expected arrays of numbers for {names}: a NumPy array, a tensor or a "
                             "dict of them (text as token ids, e.g. from perceiver_keras.ByteTokenizer). Received: a "
                             f"{type(x).__name__} of {type(next(v for v in x if isinstance(v, (str, bytes)))).__name__}")

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        for arg in _LAYER_ARGS:
            layer = getattr(self, arg)
            config[arg] = None if layer is None else keras.saving.serialize_keras_object(layer)
        config.update(
            inputs_shape=list(self.inputs_shape),
            input_dtype=self.main_input_dtype,
            input_name=self.input_name,
            use_padding_mask=self.use_padding_mask,
            use_output_indices=self.use_output_indices,
            tie_embeddings=self.tie_embeddings,
            seed=self.seed,
            check_finite=self.check_finite,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for arg in _LAYER_ARGS:
            if config.get(arg) is not None:
                config[arg] = keras.saving.deserialize_keras_object(config[arg])
        return cls(**config)
