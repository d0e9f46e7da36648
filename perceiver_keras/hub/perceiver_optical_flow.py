"""`PerceiverOpticalFlow`: Perceiver IO's optical-flow model as a keras-hub `Task`."""

import keras
from keras_hub.models import Task

from perceiver_keras.decoder import PerceiverDecoder
from perceiver_keras.flow import FlowPostprocessor, FlowPreprocessor
from perceiver_keras.hub import _preset_io, _task_checks
from perceiver_keras.hub.perceiver_backbone import PerceiverBackbone
from perceiver_keras.hub.perceiver_optical_flow_preprocessor import PerceiverOpticalFlowPreprocessor
from perceiver_keras.position_encoding import InputQuery


@keras.saving.register_keras_serializable(package="perceiver_keras")
class PerceiverOpticalFlow(_preset_io.PresetTask, Task):
    """Frame pairs (B, 2, H, W, 3) -> flow (B, H, W, 2); with output indices, the flow of those pixels.

    The decoder's queries are the embedded inputs themselves (each pixel's patches and position), so
    every pixel is decoded; the flow is divided by `rescale_factor`. With `use_output_indices` the model
    takes {"frames", "output_indices" (B, O)} (row-major pixel indices) and returns (B, O, 2): subsampled
    decoding in training (`PerceiverOpticalFlow.from_preset(dir, use_output_indices=True)`).

    Args:
        backbone: a `PerceiverBackbone` with a `FlowPreprocessor` input adapter.
        preprocessor: optional `PerceiverOpticalFlowPreprocessor` (run by fit/predict/evaluate).
        decoder: optional `PerceiverDecoder` or its config (default: the reference's, one head, no query
            residual, a zero-initialised projection to 2 channels).
        rescale_factor: float, the decoded flow is divided by it.
        use_output_indices: bool, decode the pixels of "output_indices" only.

    Example:
    >>> from perceiver_keras import FlowPreprocessor, PerceiverEncoder
    >>> backbone = PerceiverBackbone(FlowPreprocessor(patch_projection_channels=8, num_bands=2),
    ...     PerceiverEncoder(4, 16, num_self_attention_layers_per_block=1, num_self_attention_heads=2),
    ...     inputs_shape=(2, 6, 5, 3), input_name="frames")
    >>> PerceiverOpticalFlow(backbone)(keras.ops.ones((1, 2, 6, 5, 3))).shape
    (1, 6, 5, 2)

    Reference: Jaegle et al., Perceiver IO, arXiv 2107.14795, section 4.2.
    """

    backbone_cls = PerceiverBackbone
    preprocessor_cls = PerceiverOpticalFlowPreprocessor
    input_adapter_cls = FlowPreprocessor
    task_description = "an optical-flow model"
    head_layer_args = ("decoder",)

    def __init__(self, backbone, preprocessor=None, decoder=None, rescale_factor=100.0, use_output_indices=False,
                 **kwargs):
        _task_checks.check_backbone(type(self), backbone)
        _task_checks.no_classes(type(self), kwargs)
        self.backbone, self.preprocessor = backbone, preprocessor
        dtype = backbone.dtype_policy
        self.query = InputQuery(name="pixel_queries", dtype=dtype)
        self.decoder = _task_checks.layer(decoder, lambda: PerceiverDecoder(
            output_channels=2, projection_initializer="zeros", name="decoder", dtype=dtype), dtype)
        frame_size = tuple(backbone.inputs_shape[1:3])
        self.postprocessor = FlowPostprocessor(rescale_factor, image_size=None if use_output_indices else frame_size,
                                               name="flow", dtype=dtype)
        frames = backbone.input
        inputs, indices = frames, None
        if use_output_indices:
            indices = keras.Input(shape=(None,), dtype="int32", name="output_indices")
            inputs = {"frames": frames, "output_indices": indices}
        embedded, latents = backbone.encode(frames)
        outputs = self.postprocessor(self.decoder(self.query(embedded, indices=indices), latents))
        Task.__init__(self, inputs=inputs, outputs=outputs, **kwargs)
        self.rescale_factor, self.use_output_indices = float(rescale_factor), bool(use_output_indices)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """As `keras.Model.compile`; "auto": Adam(1e-4), mean absolute flow error, no metrics."""
        super().compile(optimizer=keras.optimizers.Adam(1e-4) if optimizer == "auto" else optimizer,
                        loss=keras.losses.MeanAbsoluteError() if loss == "auto" else loss,
                        metrics=None if metrics == "auto" else metrics, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(rescale_factor=self.rescale_factor, use_output_indices=self.use_output_indices)
        return config
