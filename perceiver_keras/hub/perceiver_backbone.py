"""`PerceiverBackbone`: a Perceiver IO input adapter and latent encoder as a keras-hub `Backbone`."""

import keras
from keras_hub.models import Backbone

from perceiver_keras.encoder import PerceiverEncoder
from perceiver_keras.hub import _preset_files, _preset_io
from perceiver_keras.multimodal import MultimodalPreprocessor


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverBackbone(Backbone):
    """Perceiver IO's input adapter and latent encoder: inputs in, latents (B, N, D) out.

    The part of every Perceiver IO model that does not depend on the task: the input adapter maps the
    input to an array (B, M, C) (`ImagePreprocessor`, `TextPreprocessor`, `FlowPreprocessor`,
    `MultimodalPreprocessor`), and the encoder's latents cross-attend to it and self-attend. The task
    models (`PerceiverImageClassifier`, `PerceiverMaskedLM`, ...) add the output queries and the decoder.
    Its inputs are those of the zoo model it comes from: one tensor named `input_name`, with a
    "padding_mask" (B, M) beside it when `use_padding_mask` (the text models' {"token_ids",
    "padding_mask"}), or one tensor per modality for a `MultimodalPreprocessor`.

    Args:
        input_adapter: the layer that turns the input into (B, M, C); a layer or its serialized config.
        encoder: a `PerceiverEncoder` or its serialized config.
        inputs_shape: tuple, the input's shape without the batch axis (unused with a
            `MultimodalPreprocessor`, whose modalities declare theirs).
        input_dtype: str, dtype of the input.
        input_name: str, name of the input.
        use_padding_mask: bool, add a "padding_mask" input (B, M): 1 for inputs to attend to.
        dtype: optional dtype policy of the model.

    Example:
    >>> from perceiver_keras import ImagePreprocessor, PerceiverEncoder
    >>> backbone = PerceiverBackbone(
    ...     input_adapter=ImagePreprocessor("pixels", num_bands=2),
    ...     encoder=PerceiverEncoder(4, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
    ...     inputs_shape=(8, 8, 1), input_name="images")
    >>> backbone(keras.ops.ones((2, 8, 8, 1))).shape
    (2, 4, 16)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 2.
    """

    def __init__(self, input_adapter, encoder, inputs_shape=None, input_dtype="float32", input_name="inputs",
                 use_padding_mask=False, dtype=None, **kwargs):
        input_adapter = _preset_files.as_layer(input_adapter, dtype)
        encoder = _preset_files.as_layer(encoder, dtype)
        if not isinstance(encoder, PerceiverEncoder):
            raise ValueError(f"`encoder` must be a PerceiverEncoder. Received: encoder of type {type(encoder).__name__}")
        multimodal = isinstance(input_adapter, MultimodalPreprocessor)
        if multimodal:
            if use_padding_mask:
                raise ValueError("A multimodal backbone takes no padding mask. Received: use_padding_mask=True")
            inputs = {key: keras.Input(shape=layer.expected_shape, name=key)
                      for key, layer in input_adapter.modalities.items()}
            inputs_shape, main = None, inputs
        else:
            if not inputs_shape:
                raise ValueError(f"`inputs_shape` must have at least one axis. Received: inputs_shape={inputs_shape}")
            inputs_shape = tuple(inputs_shape)
            main = keras.Input(shape=inputs_shape, dtype=input_dtype, name=input_name)
            inputs = {input_name: main}
        embedded = input_adapter(main)
        padding_mask = None
        if use_padding_mask:
            # As long as the embedded array (M), so that a mask of the wrong length is refused.
            padding_mask = keras.Input(shape=(embedded.shape[1],), dtype="int32", name="padding_mask")
            inputs["padding_mask"] = padding_mask
        latents = encoder(embedded, input_mask=padding_mask)
        super().__init__(inputs=inputs if len(inputs) > 1 else main, outputs=latents, dtype=dtype, **kwargs)
        self.input_adapter, self.encoder = input_adapter, encoder
        self.inputs_shape, self.main_input_dtype, self.input_name = inputs_shape, input_dtype, input_name
        self.use_padding_mask = bool(use_padding_mask)

    def encode(self, inputs):
        """(embedded inputs (B, M, C), latents (B, N, D)) of `inputs`, structured as the backbone's input.

        The backbone's own layers called on `inputs`: task models build their graphs with it, since
        some decoders read the embedded inputs too (optical flow's queries are those inputs).
        """
        if isinstance(self.input_adapter, MultimodalPreprocessor):
            main, padding_mask = inputs, None
        elif isinstance(inputs, dict):
            main, padding_mask = inputs[self.input_name], inputs.get("padding_mask")
        else:
            main, padding_mask = inputs, None
        embedded = self.input_adapter(main)
        return embedded, self.encoder(embedded, input_mask=padding_mask)

    @property
    def num_latent_channels(self):
        """D, the width of the latents."""
        return self.encoder.num_latent_channels

    def load_weights(self, filepath, *args, **kwargs):
        """Loads `filepath`; a file that does not fit names the first weight, its shape and the expected one."""
        _preset_files.load_weights_checked(self, filepath, super().load_weights, *args, **kwargs)

    def save_to_preset(self, preset_dir, max_shard_size=10):
        """Writes config.json, metadata.json and model.weights.h5 to `preset_dir`, all or nothing."""
        with _preset_files.writing(preset_dir) as folder:
            super().save_to_preset(folder, max_shard_size=max_shard_size)
            _preset_io.name_keras_hub_tasks(folder, type(self))

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        _preset_files.check_preset(preset, cls)
        return super().from_preset(preset, load_weights=load_weights, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            input_adapter=keras.saving.serialize_keras_object(self.input_adapter),
            encoder=keras.saving.serialize_keras_object(self.encoder),
            inputs_shape=None if self.inputs_shape is None else list(self.inputs_shape),
            input_dtype=self.main_input_dtype,
            input_name=self.input_name,
            use_padding_mask=self.use_padding_mask,
        )
        return config
