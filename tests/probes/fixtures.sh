set -e
cd "${CHECKOUT:-$(dirname "$0")/../..}" && source .venv/bin/activate  # the checkout whose CLI builds the fixtures
FX=/tmp/h18/fx
T="--set num_latents=8 --set num_latent_channels=16 --set num_blocks=1 --set num_self_attention_layers_per_block=1 --set num_self_attention_heads=2 --set num_bands=2 --set out_channels=8"
[ -d $FX/run ] || python -m zoo train image_classification --preset digits --out $FX/run --epochs 1 --take 64 --batch-size 32 $T 2>&1 | tail -c 300
cp $FX/run/model.keras $FX/m.keras
python - <<'PY'
import json, os, numpy as np, keras
import perceiver_keras
FX="/tmp/h18/fx"
m = perceiver_keras.load_model(f"{FX}/m.keras")
if not os.path.exists(f"{FX}/preset"):
    m.save_to_preset(f"{FX}/preset")
os.makedirs(f"{FX}/preset_noconfig", exist_ok=True)
import shutil
for f in os.listdir(f"{FX}/preset"):
    if f != "config.json": shutil.copy(f"{FX}/preset/{f}", f"{FX}/preset_noconfig/{f}")
np.savez(f"{FX}/eval_wrong.npz", x=np.zeros((4, 9, 9, 1), "float32"), y=np.zeros((4,), "int64"))
np.savez(f"{FX}/calib_nan.npz", x=np.full((4, 8, 8, 1), np.nan, "float32"))
np.savez(f"{FX}/eval_ok.npz", x=np.zeros((4, 8, 8, 1), "float32"), y=np.eye(10)[[0,1,2,3]].astype("float32"))
open(f"{FX}/notnpz.npz","w").write("hello")
for name, cfg in {"tf_noconfig": None, "tf_badjson": "{not json", "tf_bert": json.dumps({"model_type": "bert", "architectures": ["BertModel"]}),
                  "tf_nosafetensors": json.dumps({"model_type": "perceiver", "architectures": ["PerceiverForMaskedLM"], "d_latents": 16})}.items():
    os.makedirs(f"{FX}/{name}", exist_ok=True)
    if cfg is not None: open(f"{FX}/{name}/config.json", "w").write(cfg)
os.makedirs(f"{FX}/emptydir", exist_ok=True)
open(f"{FX}/afile.txt","w").write("x")
PY
ls $FX $FX/preset
