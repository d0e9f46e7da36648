"""`from_transformers(path)`: a folder written by transformers' `save_pretrained` -> our Keras model.

The architecture is read from config.json; the weights from model.safetensors (read with
`safetensors.numpy`, no torch needed) or pytorch_model.bin (needs torch), either one file or shards
listed by `model.safetensors.index.json` / `pytorch_model.bin.index.json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from zoo.convert import weights
from zoo.convert.weights import CheckpointTensors


def read_config(folder: Path) -> dict[str, Any]:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"No config.json in {folder}: expected a folder written by save_pretrained.")
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{config_file} is not valid JSON: {error}") from error
    if config.get("model_type") != "perceiver":
        raise ValueError(
            f"{config_file} describes another architecture. Expected model_type='perceiver'. "
            f"Received: model_type={config.get('model_type')!r}"
        )
    return config


def read_tensors(folder: Path) -> CheckpointTensors:
    """The checkpoint's tensors as numpy arrays, from safetensors (preferred) or a torch .bin file,
    single or sharded (`save_pretrained(max_shard_size=...)`: an index JSON naming each tensor's shard)."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return CheckpointTensors(_read_file(folder / name), str(folder / name))
        index = folder / f"{name}.index.json"
        if index.is_file():
            return CheckpointTensors(_read_shards(index), str(index))
    raise FileNotFoundError(
        f"No model.safetensors or pytorch_model.bin (or their sharded .index.json) in {folder}.")


def _read_file(path: Path) -> dict[str, np.ndarray]:
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        try:
            return load_file(str(path))
        except Exception as error:  # safetensors raises its own error types for corrupt files.
            raise ValueError(f"Could not read {path}: it is corrupt or truncated ({error})") from error
    try:
        import torch
    except ImportError as error:
        raise ImportError(f"{path} is a PyTorch file and needs torch; safetensors files do not.") from error
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"Could not read {path}: it is corrupt or truncated ({error})") from error
    return {k: v.float().numpy() for k, v in state.items()}


def _read_shards(index: Path) -> dict[str, np.ndarray]:
    """Every shard an index names, checked against its weight map: each tensor in the shard it names."""
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(f"{index} is not a checkpoint index (expected JSON with a 'weight_map' of tensor name "
                         f"-> shard file): {error!r}") from error
    tensors: dict[str, np.ndarray] = {}
    for shard in shards:
        path = index.parent / shard
        if not path.is_file():
            raise FileNotFoundError(f"{index} names the shard {shard}, which is not in {index.parent}.")
        found = _read_file(path)
        missing = sorted(name for name, file in weight_map.items() if file == shard and name not in found)
        if missing:
            raise ValueError(f"{path} lacks {len(missing)} tensor(s) that {index.name} places in it, e.g. "
                             f"'{missing[0]}'.")
        tensors.update(found)
    return tensors


def encoder_arguments(config: dict[str, Any]) -> dict[str, Any]:
    """Our builder arguments for transformers' `PerceiverConfig` encoder fields."""
    return dict(
        num_latents=config["num_latents"], num_latent_channels=config["d_latents"],
        num_blocks=config["num_blocks"], num_self_attention_layers_per_block=config["num_self_attends_per_block"],
        num_self_attention_heads=config["num_self_attention_heads"],
        num_cross_attention_heads=config["num_cross_attention_heads"],
        qk_channels=config.get("qk_channels"), v_channels=config.get("v_channels"),
        cross_attention_shape_for_attention=config.get("cross_attention_shape_for_attention", "kv"),
        cross_attention_widening_factor=config.get("cross_attention_widening_factor", 1),
        self_attention_widening_factor=config.get("self_attention_widening_factor", 1),
        use_query_residual=config.get("use_query_residual", True),
        activation={"gelu": "gelu", "gelu_new": "gelu_tanh"}.get(config.get("hidden_act", "gelu"),
                                                                  config.get("hidden_act")),
    )


def _num_labels(config: dict[str, Any]) -> int:
    return len(config["id2label"]) if config.get("id2label") else config.get("num_labels", 2)


def _image_size(config: dict[str, Any]) -> tuple[int, int]:
    size = config.get("image_size", 224)
    return (size, size) if isinstance(size, int) else tuple(size)


_IMAGE_PREPROCESSING = {
    "PerceiverForImageClassificationFourier": dict(
        prep_type="pixels", position_encoding="fourier", num_bands=64, max_resolution=(224, 224)),
    "PerceiverForImageClassificationLearned": dict(
        prep_type="conv1x1", out_channels=256, position_encoding="trainable", position_channels=256,
        position_projection_channels=256),
    "PerceiverForImageClassificationConvProcessing": dict(
        prep_type="conv", out_channels=64, position_encoding="fourier", num_bands=64, max_resolution=(56, 56)),
}


def _image_classifier(architecture: str, config: dict[str, Any], tensors: CheckpointTensors) -> keras.Model:
    from zoo.image_classification.model import build_image_classifier

    model = build_image_classifier(
        image_shape=(*_image_size(config), 3), num_classes=_num_labels(config),
        name=config.get("_name_or_path", "").replace("/", "_") or "perceiver_io_image_classifier",
        **_IMAGE_PREPROCESSING[architecture], **encoder_arguments(config),
    )
    prep = model.preprocessor
    if prep.prep_type == "conv1x1":
        conv = "perceiver.input_preprocessor.convnet_1x1."
        weights.assign(prep.conv.kernel, tensors[conv + "weight"].transpose(2, 3, 1, 0), conv + "weight")
        weights.assign(prep.conv.bias, tensors[conv + "bias"], conv + "bias")
    if prep.prep_type == "conv":
        conv, norm = prep.stem[1], prep.stem[2]
        name = "perceiver.input_preprocessor.convnet."
        weights.assign(conv.kernel, tensors[name + "conv.weight"].transpose(2, 3, 1, 0), name + "conv.weight")
        for ours, theirs in ((norm.gamma, "weight"), (norm.beta, "bias"), (norm.moving_mean, "running_mean"),
                             (norm.moving_variance, "running_var")):
            weights.assign(ours, tensors[name + "batchnorm." + theirs], name + "batchnorm." + theirs)
        tensors.used.add(name + "batchnorm.num_batches_tracked")
    if prep.position_encoding == "trainable":
        name = "perceiver.input_preprocessor."
        weights.load_trainable_position_encoding(prep.positions, tensors, name + "position_embeddings.")
        weights.load_dense(prep.positions.projection, tensors, name + "positions_projection.")
    weights.load_encoder(model.encoder, tensors, "perceiver.")
    weights.load_decoder(model.decoder, tensors, "perceiver.decoder.decoder.")
    weights.load_trainable_position_encoding(
        model.query, tensors, "perceiver.decoder.decoder.output_position_encodings."
    )
    return model


def _text_arguments(config: dict[str, Any]) -> dict[str, Any]:
    arguments = encoder_arguments(config)
    arguments.update(sequence_length=config["max_position_embeddings"], vocab_size=config["vocab_size"],
                     embedding_channels=config["d_model"])
    return arguments


def _load_text_preprocessor(preprocessor, tensors: CheckpointTensors) -> None:
    name = "perceiver.input_preprocessor."
    weights.assign(preprocessor.token_embeddings, tensors[name + "embeddings.weight"], name + "embeddings.weight")
    weights.assign(preprocessor.position_embeddings, tensors[name + "position_embeddings.weight"],
                   name + "position_embeddings.weight")


def _masked_language_model(architecture: str, config: dict[str, Any], tensors: CheckpointTensors) -> keras.Model:
    from zoo.language.model import build_masked_language_model

    # transformers' MLM decoder: 8 heads, qk 8 x 32, v = d_model, no query residual, no final layer.
    model = build_masked_language_model(
        decoder_num_heads=8, decoder_qk_channels=8 * 32, decoder_v_channels=config["d_model"],
        name=config.get("_name_or_path", "").replace("/", "_") or "perceiver_io_masked_lm",
        **_text_arguments(config),
    )
    _load_text_preprocessor(model.preprocessor, tensors)
    weights.assign(model.preprocessor.bias, tensors["embedding_decoder.bias"], "embedding_decoder.bias")
    weights.load_encoder(model.encoder, tensors, "perceiver.")
    weights.load_decoder(model.decoder, tensors, "perceiver.decoder.")
    weights.load_trainable_position_encoding(model.query, tensors, "perceiver.decoder.output_position_encodings.")
    return model


def _text_classifier(architecture: str, config: dict[str, Any], tensors: CheckpointTensors) -> keras.Model:
    from zoo.language.model import build_text_classifier

    model = build_text_classifier(
        num_classes=_num_labels(config),
        name=config.get("_name_or_path", "").replace("/", "_") or "perceiver_io_text_classifier",
        **_text_arguments(config),
    )
    _load_text_preprocessor(model.preprocessor, tensors)
    weights.load_encoder(model.encoder, tensors, "perceiver.")
    weights.load_decoder(model.decoder, tensors, "perceiver.decoder.decoder.")
    weights.load_trainable_position_encoding(
        model.query, tensors, "perceiver.decoder.decoder.output_position_encodings."
    )
    return model


def _optical_flow(architecture: str, config: dict[str, Any], tensors: CheckpointTensors) -> keras.Model:
    from zoo.optical_flow.model import build_optical_flow_model

    # transformers' PerceiverForOpticalFlow: frames of its training size, Fourier features with 64
    # bands at that Nyquist resolution, a linear patch projection to 64 channels; the decoder's
    # attention widths follow the encoder's cross-attention defaults (qk and v from
    # cross_attention_shape_for_attention), one head, no query residual.
    train_size = tuple(config.get("train_size") or (368, 496))
    model = build_optical_flow_model(
        frame_size=train_size, max_resolution=train_size, num_bands=64, patch_channels=64,
        name=config.get("_name_or_path", "").replace("/", "_") or "perceiver_io_optical_flow",
        **encoder_arguments(config),
    )
    weights.load_dense(model.preprocessor.patch_projection, tensors, "perceiver.input_preprocessor.conv_after_patches.")
    weights.load_encoder(model.encoder, tensors, "perceiver.")
    weights.load_decoder(model.decoder, tensors, "perceiver.decoder.decoder.")
    return model


def _multimodal_autoencoder(architecture: str, config: dict[str, Any], tensors: CheckpointTensors) -> keras.Model:
    from zoo.multimodal.model import build_multimodal_autoencoder

    # transformers' PerceiverForMultimodalAutoencoding fixes 1x4x4 video patches with 32 Fourier bands,
    # 192 audio bands, input padding 4 and query padding 2, the label always masked, one decoder head
    # without query residual; sizes come from num_frames, image_size, audio_samples_per_frame,
    # samples_per_patch, output_shape, output_num_channels and the labels.
    num_frames, image_size = config.get("num_frames", 16), _image_size(config)
    output_shape = tuple(config.get("output_shape") or (1, 16, 224, 224))
    if tuple(output_shape[1:]) != (num_frames, *image_size):
        raise ValueError(
            "The video decoder's output_shape must be (batch, num_frames, image_size, image_size): its Fourier "
            f"queries use that Nyquist resolution. Received: output_shape={list(output_shape)}, "
            f"num_frames={num_frames}, image_size={image_size}"
        )
    label_query = "perceiver.decoder.modalities.label.decoder.output_position_encodings.position_embeddings"
    model = build_multimodal_autoencoder(
        num_frames=num_frames, frame_size=image_size,
        num_audio_samples=num_frames * config.get("audio_samples_per_frame", 1920),
        num_classes=_num_labels(config), samples_per_patch=config.get("samples_per_patch", 16),
        label_query_channels=int(tensors[label_query].shape[-1]), label_mask_probability=1.0,
        decoder_output_channels=config.get("output_num_channels", 512),
        name=config.get("_name_or_path", "").replace("/", "_") or "perceiver_io_multimodal_autoencoder",
        **encoder_arguments(config),
    )
    prefix = "perceiver.input_preprocessor."
    for key in model.preprocessor.modalities:
        weights.assign(model.preprocessor.padding[key], tensors[f"{prefix}padding.{key}"], f"{prefix}padding.{key}")
        weights.assign(model.preprocessor.mask_tokens[key], tensors[f"{prefix}mask.{key}"], f"{prefix}mask.{key}")
    weights.load_encoder(model.encoder, tensors, "perceiver.")
    for key in model.query.queries:
        name = f"perceiver.decoder.padding.{key}"
        weights.assign(model.query.padding[key], tensors[name], name)
    weights.load_trainable_position_encoding(model.query.queries["label"], tensors, label_query.rsplit(".", 1)[0] + ".")
    weights.load_decoder(model.decoder, tensors, "perceiver.decoder.decoder.")
    for key, head in model.postprocessor.heads.items():
        weights.load_dense(head, tensors, f"perceiver.output_postprocessor.modalities.{key}.classifier.")
    return model


# Architecture (config.json "architectures") -> function(architecture, config, tensors) -> model.
CONVERTERS: dict[str, Callable[[str, dict[str, Any], CheckpointTensors], keras.Model]] = {
    **{name: _image_classifier for name in _IMAGE_PREPROCESSING},
    "PerceiverForMaskedLM": _masked_language_model,
    "PerceiverForSequenceClassification": _text_classifier,
    "PerceiverForOpticalFlow": _optical_flow,
    "PerceiverForMultimodalAutoencoding": _multimodal_autoencoder,
}


def from_transformers(path: str | os.PathLike) -> keras.Model:
    """Builds our Keras model for a transformers Perceiver checkpoint folder and loads its weights.

    Args:
        path: a folder written by `save_pretrained` (config.json + model.safetensors or
            pytorch_model.bin), e.g. a local copy of deepmind/vision-perceiver-fourier or
            deepmind/language-perceiver.

    Returns:
        The Keras model, weights loaded; every checkpoint tensor is used. Image models take
        channels-last images; language models a dict {"token_ids", "padding_mask"} (B, L) int32;
        the optical-flow model frame pairs (B, 2, H, W, 3) at the checkpoint's training size; the
        multimodal autoencoder a dict {"audio" (B, S, 1), "image" (B, T, H, W, 3), "label" (B, K)}
        (decode it in chunks with `zoo.multimodal.reconstruct`).

    Raises:
        FileNotFoundError: the folder, config.json or the weights file is missing.
        ValueError: another architecture, a corrupt file, or tensors that do not fit.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"Checkpoint folder not found: {folder}")
    config = read_config(folder)
    architectures = config.get("architectures") or []
    supported = [a for a in architectures if a in CONVERTERS]
    if not supported:
        raise ValueError(
            f"Unsupported Perceiver head. Expected one of: {', '.join(sorted(CONVERTERS))}. "
            f"Received: architectures={architectures}"
        )
    tensors = read_tensors(folder)
    model = CONVERTERS[supported[0]](supported[0], config, tensors)
    unused = [name for name in tensors.unused() if not name.endswith("num_batches_tracked")]
    if unused:
        raise ValueError(f"{tensors.source} has tensors this architecture does not use: {unused[:10]}")
    return model
