"""Optical-flow file formats: Middlebury `.flo` flow (numpy and TF-graph readers, writer) and PPM.

`.flo` (Baker et al., Middlebury): float32 202021.25 ("PIEH"), int32 width, int32 height, then
height * width * 2 float32 (u, v interleaved, row-major), all little-endian. Every reader checks the
magic number, the sizes and the file length, and its error names the file. FlyingChairs stores its
frames as binary PPM (P6), which TensorFlow cannot decode: `decode_ppm` does, in numpy.
"""

from __future__ import annotations

import re
import struct

import numpy as np
import tensorflow as tf

FLO_MAGIC = 202021.25  # The float32 whose little-endian bytes read "PIEH".
FLO_MAX_SIDE = 100_000  # Larger widths or heights mean a corrupt header (Middlebury's reader: 99,999).
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SPACE = rb"(?:\s|#[^\n]*\n)+"  # Whitespace and comments separate the fields of a PPM header.
_PPM_HEADER = re.compile(rb"P6" + _SPACE + rb"(\d+)" + _SPACE + rb"(\d+)" + _SPACE + rb"(\d+)\s")


def read_flo(path: str) -> np.ndarray:
    """Reads a Middlebury `.flo` file -> float32 (H, W, 2), (u, v) per pixel.

    Raises:
        ValueError: naming the file, on a wrong magic number, an absurd size or a wrong length.
    """
    with tf.io.gfile.GFile(path, "rb") as f:
        contents = f.read()
    height, width = _flo_header(contents[:12], len(contents), path)
    return np.frombuffer(contents, "<f4", offset=12).reshape(height, width, 2).astype(np.float32)


def write_flo(path: str, flow: np.ndarray) -> None:
    """Writes float (H, W, 2) flow as a Middlebury `.flo` file (little-endian float32)."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[-1] != 2 or 0 in flow.shape:
        raise ValueError(f"Expected flow of shape (H, W, 2). Received: flow.shape={flow.shape}")
    height, width, _ = flow.shape
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(struct.pack("<fii", FLO_MAGIC, width, height) + flow.astype("<f4").tobytes())


def decode_flo(contents: tf.Tensor, path: tf.Tensor | str = "<bytes>") -> tf.Tensor:
    """TF-graph `.flo` decoding (for tf.data): the contents of a file -> float32 (H, W, 2).

    The checks of `read_flo` run as assertions whose message names `path`; in a tf.data
    pipeline they raise `tf.errors.InvalidArgumentError` when the element is read.
    """
    contents, path = tf.convert_to_tensor(contents, tf.string), tf.convert_to_tensor(path, tf.string)
    length = tf.cast(tf.strings.length(contents), tf.int64)

    def check(condition, expected, *received):
        message = tf.strings.format("Corrupt .flo file {}: expected " + expected, (path, *received))
        return tf.debugging.Assert(condition, [message])

    header_check = check(length >= 12, "at least a 12-byte header. Received: {} bytes", length)
    with tf.control_dependencies([header_check]):
        magic = tf.io.decode_raw(tf.strings.substr(contents, 0, 4), tf.float32)[0]
        width_height = tf.cast(tf.io.decode_raw(tf.strings.substr(contents, 4, 8), tf.int32), tf.int64)
    width, height = width_height[0], width_height[1]
    header_checks = [
        check(tf.equal(magic, FLO_MAGIC), f"magic number {FLO_MAGIC}. Received: {{}}", magic),
        check(tf.reduce_all((width_height >= 1) & (width_height <= FLO_MAX_SIDE)),
              f"width and height in [1, {FLO_MAX_SIDE}]. Received: (width, height) = {{}}", width_height),
    ]
    with tf.control_dependencies(header_checks):  # Only then is 8 * width * height meaningful.
        expected_length = 12 + 8 * width * height
        length_check = check(tf.equal(length, expected_length), "12 + 8 * width * height = {} bytes for "
                             "(width, height) = {}. Received: {} bytes", expected_length, width_height, length)
    with tf.control_dependencies([length_check]):
        values = tf.io.decode_raw(tf.strings.substr(contents, 12, -1), tf.float32)
        return tf.reshape(values, tf.stack([height, width, 2]))


def read_ppm(path: str) -> np.ndarray:
    """Reads a binary (P6) PPM image, FlyingChairs' format -> uint8 (H, W, 3)."""
    with tf.io.gfile.GFile(path, "rb") as f:
        return decode_ppm(f.read(), path)


def decode_ppm(contents: bytes, path: str = "<bytes>") -> np.ndarray:
    """Decodes the bytes of a binary (P6) 8-bit PPM image -> uint8 (H, W, 3); errors name `path`."""
    height, width, offset = _ppm_header(contents, path)
    if len(contents) - offset < height * width * 3:
        raise ValueError(f"Corrupt PPM file {path}: expected {height * width * 3} bytes of pixels for "
                         f"{width}x{height}. Received: {len(contents) - offset}")
    return np.frombuffer(contents, np.uint8, height * width * 3, offset).reshape(height, width, 3)


def header_size(path: str) -> tuple[int, int]:
    """(height, width) of a .flo, .png or .ppm file, read from its header alone.

    Raises:
        ValueError: naming the file, on a corrupt header (or a .flo file of the wrong length).
    """
    with tf.io.gfile.GFile(path, "rb") as f:
        header = f.read(1024)
    if path.endswith(".flo"):
        return _flo_header(header, tf.io.gfile.stat(path).length, path)
    if path.endswith(".ppm"):
        return _ppm_header(header, path)[:2]
    if header[:8] != _PNG_SIGNATURE or len(header) < 24:
        raise ValueError(f"Corrupt PNG file {path}: expected the PNG signature and header. Received: {header[:24]!r}")
    width, height = struct.unpack(">II", header[16:24])
    return height, width


def _flo_header(header: bytes, length: int, path: str) -> tuple[int, int]:
    """Checks a .flo header against the file length -> (height, width)."""
    if length < 12:
        raise ValueError(f"Corrupt .flo file {path}: expected at least a 12-byte header. Received: {length} bytes")
    magic, width, height = struct.unpack("<fii", header[:12])
    if magic != FLO_MAGIC:
        raise ValueError(f"Corrupt .flo file {path}: expected magic number {FLO_MAGIC}. Received: {magic}")
    if not (1 <= width <= FLO_MAX_SIDE and 1 <= height <= FLO_MAX_SIDE):
        raise ValueError(f"Corrupt .flo file {path}: expected width and height in [1, {FLO_MAX_SIDE}]. "
                         f"Received: width={width}, height={height}")
    if length != 12 + 8 * width * height:
        raise ValueError(f"Corrupt .flo file {path}: expected 12 + 8 * {width} * {height} = "
                         f"{12 + 8 * width * height} bytes. Received: {length} bytes")
    return height, width


def _ppm_header(contents: bytes, path: str) -> tuple[int, int, int]:
    """-> (height, width, offset of the pixels) of an 8-bit binary PPM."""
    match = _PPM_HEADER.match(contents)
    if match is None:
        raise ValueError(f"Corrupt PPM file {path}: expected a binary PPM header (P6 width height 255). "
                         f"Received: {contents[:20]!r}")
    width, height, max_value = (int(field) for field in match.groups())
    if max_value != 255:
        raise ValueError(f"Unsupported PPM file {path}: expected 8-bit values (maximum 255). Received: {max_value}")
    return height, width, match.end()
