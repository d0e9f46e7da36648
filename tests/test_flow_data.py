"""Tests of the optical-flow file formats and folder pipelines, on tiny fake datasets in tmp_path."""

import os
import struct

import numpy as np
import pytest
import tensorflow as tf

from zoo.optical_flow import augment, data, formats

pytestmark = pytest.mark.tensorflow_only

H, W = 6, 8


def write_png(path, image):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tf.io.write_file(path, tf.io.encode_png(image))


def write_ppm(path, image, comment=b""):
    with open(path, "wb") as f:
        f.write(b"P6\n" + comment + b"%d %d\n255\n" % (image.shape[1], image.shape[0]) + image.tobytes())


def random_pair(rng, size=(H, W)):
    frames = rng.integers(0, 256, (2, *size, 3), dtype=np.uint8)
    return frames, rng.normal(0, 3, (*size, 2)).astype(np.float32)


@pytest.fixture
def sintel(tmp_path):
    """Two scenes (3 and 2 frames, so 2 + 1 pairs); returns (root, [(frames uint8, flow)] in order)."""
    rng, pairs = np.random.default_rng(0), []
    for scene, num_frames in (("alley_1", 3), ("bamboo_2", 2)):
        frames = rng.integers(0, 256, (num_frames, H, W, 3), dtype=np.uint8)
        os.makedirs(tmp_path / "training" / "flow" / scene)
        for i, frame in enumerate(frames, start=1):
            write_png(str(tmp_path / "training" / "final" / scene / f"frame_{i:04d}.png"), frame)
            if i < num_frames:
                flow = rng.normal(0, 3, (H, W, 2)).astype(np.float32)
                data.write_flo(str(tmp_path / "training" / "flow" / scene / f"frame_{i:04d}.flo"), flow)
                pairs.append((frames[i - 1:i + 1], flow))
    return tmp_path, pairs


@pytest.fixture
def chairs(tmp_path):
    """Three PPM pairs (one header with a comment) and the split file 1, 2, 1."""
    rng, pairs = np.random.default_rng(1), []
    os.makedirs(tmp_path / "data")
    for i in range(1, 4):
        frames, flow = random_pair(rng)
        write_ppm(tmp_path / "data" / f"{i:05d}_img1.ppm", frames[0], comment=b"# a comment\n" * (i == 2))
        write_ppm(tmp_path / "data" / f"{i:05d}_img2.ppm", frames[1])
        data.write_flo(str(tmp_path / "data" / f"{i:05d}_flow.flo"), flow)
        pairs.append((frames, flow))
    (tmp_path / "FlyingChairs_train_val.txt").write_text("1\n2\n1\n")
    return tmp_path, pairs


def assert_pairs(ds, expected):
    received = list(ds.as_numpy_iterator())
    assert len(received) == len(expected)
    for (frames, flow), (expected_frames, expected_flow) in zip(received, expected):
        assert frames.dtype == flow.dtype == np.float32
        np.testing.assert_allclose(frames, expected_frames / 255.0, atol=1e-7)
        np.testing.assert_array_equal(flow, expected_flow)


def test_flo_round_trip_and_byte_layout(tmp_path):
    flow = np.random.default_rng(0).normal(size=(3, 5, 2)).astype(np.float32)
    path = str(tmp_path / "a.flo")
    data.write_flo(path, flow)
    contents = open(path, "rb").read()
    assert contents[:4] == b"PIEH" and struct.unpack("<ii", contents[4:12]) == (5, 3)
    assert np.frombuffer(contents[12:16], "<f4")[0] == flow[0, 0, 0]  # u, then v, row-major.
    assert np.frombuffer(contents[16:20], "<f4")[0] == flow[0, 0, 1]
    np.testing.assert_array_equal(data.read_flo(path), flow)
    np.testing.assert_array_equal(data.decode_flo(contents, path).numpy(), flow)
    assert data.header_size(path) == (3, 5)
    with pytest.raises(ValueError, match=r"\(H, W, 2\).*\(3, 5\)"):
        data.write_flo(path, flow[..., 0])


@pytest.mark.parametrize("corrupt, expected", [
    (lambda c: c[:7], r"at least a 12-byte header. Received: 7 bytes"),
    (lambda c: b"XXXX" + c[4:], r"magic number 202021.25. Received: "),
    (lambda c: c[:4] + struct.pack("<ii", -5, 3) + c[12:], r"width and height in \[1, 100000\]. Received: "),
    (lambda c: c[:4] + struct.pack("<ii", 10 ** 6, 10 ** 6) + c[12:], r"width and height in \[1, 100000\]. Received: "),
    (lambda c: c[:-3], r"12 \+ 8 \* width \* height = 252 bytes.*Received: 249 bytes"),
])
def test_corrupt_flo_errors_name_the_file(tmp_path, corrupt, expected):
    path = str(tmp_path / "bad.flo")
    data.write_flo(path, np.zeros((3, 10, 2), np.float32))
    contents = corrupt(open(path, "rb").read())
    open(path, "wb").write(contents)
    numpy_expected = expected.replace(r"12 \+ 8 \* width \* height", r"12 \+ 8 \* 10 \* 3")
    with pytest.raises(ValueError, match=f"Corrupt .flo file {path}: expected {numpy_expected}"):
        data.read_flo(path)
    ds = tf.data.Dataset.from_tensors(path).map(lambda p: data.decode_flo(tf.io.read_file(p), p))
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"Corrupt .flo file .*bad.flo.*: expected {expected}"):
        list(ds)


def test_ppm_decoding(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (4, 7, 3), dtype=np.uint8)
    write_ppm(tmp_path / "a.ppm", image, comment=b"# made by a test\n")
    np.testing.assert_array_equal(data.read_ppm(str(tmp_path / "a.ppm")), image)
    assert data.header_size(str(tmp_path / "a.ppm")) == (4, 7)
    with pytest.raises(ValueError, match="Corrupt PPM file x.ppm: expected 84 bytes"):
        formats.decode_ppm(open(tmp_path / "a.ppm", "rb").read()[:-1], "x.ppm")
    with pytest.raises(ValueError, match="Corrupt PPM file y.ppm: expected a binary PPM header"):
        formats.decode_ppm(b"P3\n1 1\n255\n0 0 0", "y.ppm")


def test_sintel_reads_every_pair_in_order(sintel):
    root, pairs = sintel
    files = data.sintel_files(str(root), pass_name="final")
    assert [(os.path.basename(f.frame1), os.path.basename(f.frame2), os.path.basename(f.flow)) for f in files] == [
        ("frame_0001.png", "frame_0002.png", "frame_0001.flo"), ("frame_0002.png", "frame_0003.png", "frame_0002.flo"),
        ("frame_0001.png", "frame_0002.png", "frame_0001.flo")]
    ds = data.pair_dataset(files)
    assert ds.element_spec[0].shape == (2, H, W, 3) and ds.element_spec[1].shape == (H, W, 2)
    assert_pairs(ds, pairs)
    batches = list(data.make_flow_dataset(files, batch_size=2).as_numpy_iterator())
    assert [b[0].shape for b in batches] == [(2, 2, H, W, 3), (1, 2, H, W, 3)]
    epe = np.mean([np.linalg.norm(flow, axis=-1).mean() for _, flow in pairs])  # Equal-sized pairs.
    assert data.zero_flow_epe(data.make_flow_dataset(files, batch_size=2)) == pytest.approx(epe)


def test_sintel_errors(sintel):
    root, _ = sintel
    with pytest.raises(ValueError, match=f"MPI-Sintel folder {root}/training/clean .*Received: root="):
        data.sintel_files(str(root), pass_name="clean")
    with pytest.raises(ValueError, match="Expected one of: clean, final. Received: pass_name='albedo'"):
        data.sintel_files(str(root), pass_name="albedo")
    with pytest.raises(ValueError, match=r"test split has no ground truth\). Received: split=.test."):
        data.sintel_files(str(root), pass_name="final", split="test")
    os.remove(root / "training" / "flow" / "bamboo_2" / "frame_0001.flo")
    with pytest.raises(ValueError, match=r"one flow file per frame.*bamboo_2 \(1 for 2 frames.*Received: 0 files"):
        data.sintel_files(str(root), pass_name="final")
    os.remove(root / "training" / "final" / "bamboo_2" / "frame_0002.png")  # bamboo_2 has no pair now.
    write_png(str(root / "training" / "final" / "alley_1" / "frame_0003.png"), np.zeros((H, W + 1, 3), np.uint8))
    files = data.sintel_files(str(root), pass_name="final")
    with pytest.raises(ValueError, match=f"to be {H}x{W} .*Received: {H}x{W + 1} for .*alley_1/frame_0003.png"):
        data.pair_dataset(files)
    empty = root / "empty"
    os.makedirs(empty / "training" / "final" / "scene")
    os.makedirs(empty / "training" / "flow")
    with pytest.raises(ValueError, match="Expected at least one frame pair. Received: none in .*empty"):
        data.sintel_files(str(empty), pass_name="final")


def test_flying_chairs_splits(chairs):
    root, pairs = chairs
    assert_pairs(data.pair_dataset(data.flying_chairs_files(str(root))), [pairs[0], pairs[2]])
    assert_pairs(data.pair_dataset(data.flying_chairs_files(str(root), split="validation")), [pairs[1]])
    assert_pairs(data.pair_dataset(data.flying_chairs_files(str(root), split="all")), pairs)


def test_flying_chairs_png_and_errors(chairs):
    root, pairs = chairs
    for i in (1, 2):
        os.remove(root / "data" / f"00003_img{i}.ppm")
        write_png(str(root / "data" / f"00003_img{i}.png"), pairs[2][0][i - 1])
    assert_pairs(data.pair_dataset(data.flying_chairs_files(str(root), split="all")), pairs)
    (root / "FlyingChairs_train_val.txt").write_text("1\n2\n")
    with pytest.raises(ValueError, match=r"one label 1 or 2 per pair \(3 pairs .*Received: 2 lines"):
        data.flying_chairs_files(str(root))
    os.remove(root / "FlyingChairs_train_val.txt")
    with pytest.raises(ValueError, match="pass split='all'.*Received: no file .*FlyingChairs_train_val.txt"):
        data.flying_chairs_files(str(root), split="validation")
    os.remove(root / "data" / "00002_flow.flo")
    with pytest.raises(ValueError, match="Expected the file .*00002_flow.flo, the pair of .*00002_img1.ppm"):
        data.flying_chairs_files(str(root), split="all")
    with pytest.raises(ValueError, match=f"FlyingChairs folder {root}/nowhere/data"):
        data.flying_chairs_files(str(root / "nowhere"), split="all")
    with pytest.raises(ValueError, match="Expected one of: train, validation, all. Received: split='test'"):
        data.flying_chairs_files(str(root), split="test")


def test_mismatched_frame_and_flow_sizes_name_the_file(chairs):
    root, _ = chairs
    write_ppm(root / "data" / "00002_img2.ppm", np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(ValueError, match=f"Received: {H + 2}x{W} for .*00002_img2.ppm"):
        data.pair_dataset(data.flying_chairs_files(str(root), split="all"))
    write_ppm(root / "data" / "00002_img2.ppm", np.zeros((H, W, 3), np.uint8))
    data.write_flo(str(root / "data" / "00003_flow.flo"), np.zeros((H, W - 1, 2), np.float32))
    with pytest.raises(ValueError, match=f"Received: {H}x{W - 1} for .*00003_flow.flo"):
        data.make_flow_dataset(data.flying_chairs_files(str(root), split="all"), batch_size=1)


def test_training_pipeline_augments_consistently(chairs):
    root, _ = chairs
    files = data.flying_chairs_files(str(root), split="all")
    ds = data.make_flow_dataset(files, batch_size=2, training=True, crop_size=(4, 5), seed=0, repeat=True)
    frames, flow = next(iter(ds))
    assert frames.shape == (2, 2, 4, 5, 3) and flow.shape == (2, 4, 5, 2)
    assert float(tf.reduce_min(frames)) >= 0 and float(tf.reduce_max(frames)) <= 1
    centred = list(data.make_flow_dataset(files, batch_size=3, crop_size=(4, 6)).as_numpy_iterator())[0]
    full = list(data.make_flow_dataset(files, batch_size=3).as_numpy_iterator())[0]
    np.testing.assert_array_equal(centred[1], full[1][:, 1:5, 1:7])
    with pytest.raises(ValueError, match=r"crop_size=\(height, width\).*Received: crop_size=\(0, 4\)"):
        data.make_flow_dataset(files, batch_size=1, crop_size=(0, 4))
    with pytest.raises(ValueError, match=rf"within the frames \({H}, {W}\).*Received: crop_size=\(4, 9\)"):
        data.make_flow_dataset(files, batch_size=1, crop_size=(4, 9))
    upscaled = data.make_flow_dataset(files, batch_size=1, training=True, crop_size=(4, 9))
    assert next(iter(upscaled))[0].shape == (1, 2, 4, 9, 3)


def test_flips_and_rescaling_transform_the_flow():
    rng = np.random.default_rng(0)
    frame2 = tf.constant(rng.random((12, 16, 3)), tf.float32)
    flow = tf.constant(np.broadcast_to([2.0, -1.0], (12, 16, 2)), tf.float32)  # Every pixel moves (2, -1).
    frames = tf.stack([augment.backward_warp(frame2, flow), frame2])
    for horizontal, vertical in ((True, False), (False, True), (True, True)):
        flipped, flipped_flow = augment.flip_pair(frames, flow, tf.constant(horizontal), tf.constant(vertical))
        np.testing.assert_array_equal(flipped_flow[0, 0], [-2.0 if horizontal else 2.0, 1.0 if vertical else -1.0])
        warped = augment.backward_warp(flipped[1], flipped_flow).numpy()
        rows, cols = slice(0, -1) if vertical else slice(1, None), slice(2, None) if horizontal else slice(0, -2)
        np.testing.assert_allclose(warped[rows, cols], flipped[0].numpy()[rows, cols], atol=1e-6)
    for seed in range(5):
        scaled, scaled_flow = augment.random_scale_crop(frames, flow, tf.constant([seed, 1]), (10, 10), (0.8, 1.25))
        assert scaled.shape == (2, 10, 10, 3)
        u, v = scaled_flow[..., 0].numpy(), scaled_flow[..., 1].numpy()
        assert 2 * 0.79 < u.min() and u.max() < 2 * 1.26 and np.ptp(u) < 1e-5
        assert abs(u.mean() / 2 + v.mean()) < 0.1  # Both axes scaled alike (up to rounding the size).


def test_photometric_jitter_is_the_same_for_both_frames():
    frame = tf.random.stateless_uniform([9, 11, 3], [0, 0])
    jittered = augment.photometric_jitter(tf.stack([frame, frame]), tf.constant([3, 4]), noise_stddev=0.0)
    np.testing.assert_array_equal(jittered[0], jittered[1])
    assert not np.allclose(jittered[0], frame, atol=0.01)


def test_end_point_error():
    assert data.end_point_error(np.zeros((2, 3, 2)), np.broadcast_to([3.0, 4.0], (2, 3, 2))) == 5.0
    with pytest.raises(ValueError, match="empty dataset"):
        data.zero_flow_epe(tf.data.Dataset.from_tensor_slices((np.zeros((0, 2, 1, 1, 3)), np.zeros((0, 1, 1, 2)))))


def test_a_truncated_frame_is_named_when_the_pipeline_reads_it(sintel):
    # Its PNG header is intact, so the up-front size check passes; decoding fails inside tf.data.
    root, _ = sintel
    path = root / "training" / "final" / "bamboo_2" / "frame_0002.png"
    path.write_bytes(path.read_bytes()[:60])
    dataset = data.make_flow_dataset(data.sintel_files(str(root), pass_name="final"), batch_size=1)
    with pytest.raises(tf.errors.InvalidArgumentError, match=f"Cannot decode the image file {path}: Invalid PNG data"):
        list(dataset.as_numpy_iterator())
