"""The generic Perceiver IO model: preprocessor -> encoder -> decoder(queries) -> postprocessor."""

import keras

from perceiver_keras import _checks
from perceiver_keras.initialization import derive_seed, seed_initializers

_LAYER_ARGS = ("encoder", "decoder", "query", "preprocessor", "postprocessor")


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverIO(keras.Model):
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

    Example:
    >>> from perceiver_keras import PerceiverEncoder, PerceiverDecoder, TrainablePositionEncoding
    >>> model = PerceiverIO(
    ...     encoder=PerceiverEncoder(8, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
    ...     decoder=PerceiverDecoder(output_channels=3),
    ...     query=TrainablePositionEncoding(index_dims=1, num_channels=16),
    ...     inputs_shape=(20, 5))
    >>> model(keras.ops.ones((2, 20, 5))).shape
    (2, 1, 3)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795.
    """

    def __init__(self, encoder, decoder, query, inputs_shape, preprocessor=None, postprocessor=None,
                 input_dtype="float32", input_name="inputs", use_padding_mask=False, use_output_indices=False,
                 tie_embeddings=False, seed=None, **kwargs):
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
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for arg in _LAYER_ARGS:
            if config.get(arg) is not None:
                config[arg] = keras.saving.deserialize_keras_object(config[arg])
        return cls(**config)
