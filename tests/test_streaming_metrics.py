"""The streaming metrics' sample weights: weighted sums over every value, as numpy computes them."""

import numpy as np
import pytest

from zoo.multimodal.metrics import PeakSignalToNoiseRatio
from zoo.optical_flow.metrics import EndPointError

pytestmark = pytest.mark.tensorflow_only


def test_psnr_and_epe_weight_each_example_over_two_batches():
    rng = np.random.default_rng(0)
    frames = [(rng.uniform(size=(3, 5, 4)), rng.uniform(size=(3, 5, 4)), np.array([1.0, 0.0, 2.0])),
              (rng.uniform(size=(2, 5, 4)), rng.uniform(size=(2, 5, 4)), np.array([0.5, 1.0]))]
    psnr = PeakSignalToNoiseRatio(max_value=2.0)
    for true, pred, weight in frames:
        psnr.update_state(true, pred, sample_weight=weight)
    squared = sum(np.sum((p - t) ** 2 * w[:, None, None]) for t, p, w in frames)
    count = sum(np.sum(np.broadcast_to(w[:, None, None], t.shape)) for t, _, w in frames)
    assert float(psnr.result()) == pytest.approx(10 * np.log10(4.0 / (squared / count)), rel=1e-5)

    epe = EndPointError(flow_scale_factor=20.0)
    flows = [(rng.normal(size=(3, 6, 2)), rng.normal(size=(3, 6, 2)) / 20, np.array([1.0, 0.0, 3.0])),
             (rng.normal(size=(1, 6, 2)), rng.normal(size=(1, 6, 2)) / 20, np.array([2.0]))]
    for true, pred, weight in flows:
        epe.update_state(true, pred, sample_weight=weight)
    total = sum(np.sum(np.linalg.norm(p * 20 - t, axis=-1) * w[:, None]) for t, p, w in flows)
    count = sum(np.sum(w) * t.shape[1] for t, _, w in flows)
    assert float(epe.result()) == pytest.approx(total / count, rel=1e-5)
