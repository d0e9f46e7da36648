"""A finished tiny flow run whose export reads a fake Sintel folder with one truncated PNG; then `python -m export`."""
import hashlib, json, os, sys
import numpy as np
sys.path.insert(0, os.getcwd())
import tensorflow as tf
from zoo import create_model
from zoo.optical_flow import data

out = sys.argv[1]
root, run = os.path.join(out, "sintel"), os.path.join(out, "run")
rng = np.random.default_rng(0)
for scene in ("alley_1", "bamboo_2"):
    os.makedirs(os.path.join(root, "training", "flow", scene))
    os.makedirs(os.path.join(root, "training", "clean", scene))
    for i in (1, 2, 3):
        tf.io.write_file(os.path.join(root, "training", "clean", scene, f"frame_{i:04d}.png"),
                         tf.io.encode_png(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)))
        if i < 3:
            data.write_flo(os.path.join(root, "training", "flow", scene, f"frame_{i:04d}.flo"),
                           rng.normal(0, 1, (16, 16, 2)).astype(np.float32))
bad = os.path.join(root, "training", "clean", "bamboo_2", "frame_0002.png")
with open(bad, "rb") as f:
    head = f.read(60)
with open(bad, "wb") as f:
    f.write(head)
tiny = dict(frame_size=(16, 16), num_bands=2, patch_channels=8, num_latents=8, num_latent_channels=16,
            num_self_attention_layers_per_block=1, num_self_attention_heads=2)
os.makedirs(run)
create_model("flow_small", **tiny).save(os.path.join(run, "model.keras"))
digest = hashlib.sha256(open(os.path.join(run, "model.keras"), "rb").read()).hexdigest()
json.dump({"task": "optical_flow", "preset": "flow_small", "model_overrides": {**tiny, "frame_size": [16, 16]},
           "options": {"batch_size": 1, "seed": 0}, "status": "finished", "model_sha256": digest,
           "imports": ["perceiver_keras", "zoo"],
           "data": {"builder": "zoo.optical_flow.export:export_arrays",
                    "kwargs": {"dataset": "sintel", "frame_size": [16, 16], "data_dir": root, "num_calibration": 2,
                               "num_eval": 2}}}, open(os.path.join(run, "run.json"), "w"))
print("truncated:", bad, flush=True)
os.execvp(sys.executable, [sys.executable, "-m", "export", run, "--out", os.path.join(out, "export"), "--latency-runs", "0"])
