"""The issue-18 re-probe: each bad input in a fresh process; run as `python probes.py ROOT TAG [ids]`."""
import json, os, re, subprocess, sys, time
FX = "/tmp/h18/fx"
T = ("--set num_latents=8 --set num_latent_channels=16 --set num_blocks=1 --set num_self_attention_layers_per_block=1 "
     "--set num_self_attention_heads=2 --set num_bands=2 --set out_channels=8")
TR = f"python -m zoo train image_classification --preset digits --epochs 1 --take 64 --batch-size 32 {T}"
PY = "python -c "
TOY = "dict(num_latents=8, num_latent_channels=16, num_blocks=1, num_self_attention_layers_per_block=1, num_self_attention_heads=2)"
MM = ("import sys,numpy as np; sys.path.insert(0,'tests'); from test_multimodal_models import _toy,_inputs; "
      "m=_toy(use_output_indices=True); x=_inputs(); ")
P = [
 ("zoo train", "preset of another task: train optical_flow --preset digits", f"python -m zoo train optical_flow --preset digits --out OUT/a"),
 ("zoo train", "unknown --set key", f"{TR} --out OUT/b --set num_latentz=8"),
 ("zoo train", "--set value a word", f"{TR} --out OUT/c --set num_latents=many"),
 ("zoo train", "--set negative", f"{TR} --out OUT/d --set num_latents=-5"),
 ("zoo train", "--set without =", f"{TR} --out OUT/e --set num_latents"),
 ("zoo train", "--set image_shape=(8,8,3) (digits has 1 channel)", f"{TR} --out OUT/f --set 'image_shape=(8,8,3)'"),
 ("zoo train", "--set image_shape=(8,9,1) (digits are square)", f"{TR} --out OUT/g --set 'image_shape=(8,9,1)'"),
 ("zoo train", "--set image_shape=(2,2,1) on imagenet_conv stem", f"python -m zoo train image_classification --preset imagenet_conv --out OUT/h --set 'image_shape=(4,4,3)' --epochs 1"),
 ("zoo train", "--classes 0,99 (digits has 10)", f"{TR} --out OUT/i --classes 0,99 --set num_classes=2"),
 ("zoo train", "--classes 1,1 (duplicate)", f"{TR} --out OUT/j --classes 1,1 --set num_classes=2"),
 ("zoo train", "--mixup -0.5", f"{TR} --out OUT/k --mixup -0.5"),
 ("zoo train", "--learning-rate nan", f"{TR} --out OUT/l --learning-rate nan"),
 ("zoo train", "--text-files glob matching nothing", f"python -m zoo train masked_language_modeling --preset pydoc_mlm --corpus text_files --text-files '/tmp/h18/nothing/*.txt' --out OUT/m --epochs 1"),
 ("zoo train", "--text-files without --corpus text_files", f"python -m zoo train masked_language_modeling --preset pydoc_mlm --text-files '/tmp/h18/fx/*.txt' --out OUT/n --epochs 1"),
 ("zoo train", "--init-from a missing path", f"{TR} --out OUT/o --init-from /tmp/h18/nothing"),
 ("zoo train", "--init-from a text file", f"{TR} --out OUT/p --init-from {FX}/afile.txt"),
 ("zoo train", "--freeze-backbone without --init-from", f"{TR} --out OUT/q --freeze-backbone"),
 ("zoo train", "--data-dir missing for sintel", f"python -m zoo train optical_flow --preset flow_small --flow-dataset sintel --data-dir /tmp/h18/nothing --out OUT/r --epochs 1"),
 ("zoo train", "--out '' (empty)", f"{TR} --out ''"),
 ("zoo evaluate", "a missing run directory", f"python -m zoo evaluate /tmp/h18/nothing"),
 ("zoo evaluate", "run.json holding a JSON list", f"mkdir -p OUT/s && cp {FX}/m.keras OUT/s/model.keras && echo '[]' > OUT/s/run.json && python -m zoo evaluate OUT/s"),
 ("zoo evaluate", "run.json naming an unknown preset", f"cp -r {FX}/run OUT/t && sed -i 's/\"preset\": \"digits\"/\"preset\": \"digitz\"/' OUT/t/run.json && python -m zoo evaluate OUT/t"),
 ("zoo evaluate", "model.keras that is a folder", f"mkdir -p OUT/u/model.keras && cp {FX}/run/run.json OUT/u/ && python -m zoo evaluate OUT/u"),
 ("zoo demo", "--epochs abc", "python -m zoo demo --out OUT/v --epochs abc"),
 ("zoo demo", "--out an existing file", f"python -m zoo demo --out {FX}/afile.txt --epochs 1"),
 ("zoo tune", "--tuner grid", "python -m zoo tune image_classification --preset digits --out OUT/w --tuner grid"),
 ("zoo tune", "--quantize int4", "python -m zoo tune image_classification --preset digits --out OUT/x --quantize int4"),
 ("zoo convert", "folder without config.json", f"python -m zoo convert {FX}/tf_noconfig --out OUT/y"),
 ("zoo convert", "config.json not JSON", f"python -m zoo convert {FX}/tf_badjson --out OUT/z"),
 ("zoo convert", "config.json of a BERT", f"python -m zoo convert {FX}/tf_bert --out OUT/aa"),
 ("zoo convert", "no model.safetensors", f"python -m zoo convert {FX}/tf_nosafetensors --out OUT/ab"),
 ("export", "--out /dev/null", f"python -m export {FX}/run --out /dev/null --latency-runs 0"),
 ("export", "--quantize '' (empty)", f"python -m export {FX}/run --out OUT/ac --quantize ''"),
 ("export", "--quantize INT8 (upper case)", f"python -m export {FX}/run --out OUT/ad --quantize INT8"),
 ("export", "--quantize float32,float32", f"python -m export {FX}/run --out OUT/ae --quantize float32,float32 --latency-runs 0 --num-eval 4"),
 ("export", "--eval-data missing file", f"python -m export {FX}/m.keras --out OUT/af --eval-data /tmp/h18/nothing.npz"),
 ("export", "--eval-data x of the wrong image size", f"python -m export {FX}/m.keras --out OUT/ag --eval-data {FX}/eval_wrong.npz --quantize float32 --latency-runs 0"),
 ("export", "--eval-data not an npz", f"python -m export {FX}/m.keras --out OUT/ah --eval-data {FX}/notnpz.npz"),
 ("export", "--calibration-data all NaN", f"python -m export {FX}/m.keras --out OUT/ai --eval-data {FX}/eval_ok.npz --calibration-data {FX}/calib_nan.npz --quantize int8 --latency-runs 0"),
 ("export", "source: a folder without model.keras", f"python -m export {FX}/emptydir --out OUT/aj"),
 ("export", "corrupt PNG inside the evaluation data folder", "python /tmp/h18/flow_export_probe.py OUT/ak"),
 ("API", "zoo.create_model('nosuch')", PY + "\"import zoo; zoo.create_model('nosuch')\""),
 ("API", "zoo.create_model('digits', num_latents=0)", PY + "\"import zoo; zoo.create_model('digits', num_latents=0)\""),
 ("API", "zoo.create_model('digits', bogus=1)", PY + "\"import zoo; zoo.create_model('digits', bogus=1)\""),
 ("API", "perceiver_keras.load_model(missing file)", PY + "\"import perceiver_keras; perceiver_keras.load_model('/tmp/h18/nothing.keras')\""),
 ("API", "perceiver_keras.load_model(a text file named .keras)", f"cp {FX}/afile.txt OUT/al.keras && " + PY + "\"import perceiver_keras; perceiver_keras.load_model('OUT/al.keras')\""),
 ("API", "predict images of the wrong size (2,9,9,1)", PY + f"\"import numpy as np, perceiver_keras; m=perceiver_keras.load_model('{FX}/m.keras'); m.predict(np.zeros((2,9,9,1)))\""),
 ("API", "predict a list of strings", PY + f"\"import perceiver_keras; m=perceiver_keras.load_model('{FX}/m.keras'); m.predict(['a','b'])\""),
 ("API", "predict a dict for a one-input model", PY + f"\"import numpy as np, perceiver_keras; m=perceiver_keras.load_model('{FX}/m.keras'); m.predict({{'pixels': np.zeros((2,8,8,1))}})\""),
 ("API", "from_preset(missing folder)", PY + "\"import perceiver_keras, keras_hub; keras_hub.models.ImageClassifier.from_preset('/tmp/h18/nothing')\""),
 ("API", "from_preset(folder without config.json)", PY + f"\"import perceiver_keras, keras_hub; keras_hub.models.ImageClassifier.from_preset('{FX}/preset_noconfig')\""),
 ("API", "save_to_preset(path that is a file)", PY + f"\"import perceiver_keras; m=perceiver_keras.load_model('{FX}/m.keras'); m.save_to_preset('{FX}/afile.txt')\""),
 ("API", "language model predict of float ids 1.5", PY + f"\"import numpy as np, zoo; m=zoo.create_model('pydoc_mlm', sequence_length=16, **{TOY}); m.predict({{'input_ids': np.full((1,16),1.5), 'padding_mask': np.ones((1,16))}})\""),
 ("API", "multimodal predict of batch 0", PY + "\"" + MM + "m.predict({k: v[:0] for k, v in {**x, 'image_indices': np.zeros((2,1),'int32'), 'audio_indices': np.zeros((2,1),'int32')}.items()}, verbose=0)\""),
 ("API", "multimodal subsampled image index out of range", PY + "\"" + MM + "y=m.predict({**x, 'image_indices': np.full((2,1),10000,'int32'), 'audio_indices': np.zeros((2,1),'int32')}, verbose=0); print('OUTPUT', y['image'][0,0])\""),
 ("API", "multimodal audio batch of 3 beside image batch of 2", PY + "\"" + MM + "m({**x, 'audio': np.zeros((3,64,1),'float32'), 'image_indices': np.zeros((2,1),'int32'), 'audio_indices': np.zeros((2,1),'int32')})\""),
 ("API", "multimodal label of 7s (not one-hot)", PY + "\"" + MM + "y=m({**x, 'label': np.full((2,5),7.0,'float32'), 'image_indices': np.zeros((2,1),'int32'), 'audio_indices': np.zeros((2,1),'int32')}); print('OUTPUT', np.asarray(y['label'])[0])\""),
 ("API", "flow model predict of 3 frames", PY + "\"import numpy as np, zoo; m=zoo.create_model('flow_small', frame_size=(16,16), num_bands=2, patch_channels=8, num_latents=8, num_latent_channels=16, num_self_attention_layers_per_block=1, num_self_attention_heads=2); m.predict(np.zeros((1,3,16,16,3)))\""),
]
def clean(text):
    keep = [l for l in text.splitlines() if not re.match(r"^(I0000|W0000|E0000|WARNING: All log|To enable the following)", l)]
    return "\n".join(keep)[-700:]
if __name__ == "__main__":
    root, tag = sys.argv[1], sys.argv[2]
    wanted = set(int(i) for i in sys.argv[3:])
    out = f"/tmp/h18/out_{tag}"
    subprocess.run(["rm", "-rf", out]); os.makedirs(out)
    results = []
    for i, (area, what, cmd) in enumerate(P, 1):
        if wanted and i not in wanted:
            continue
        cmd = cmd.replace("OUT", out)
        t = time.time()
        r = subprocess.run(["bash", "-c", f"source /work/main/.venv/bin/activate && timeout 240 {cmd}" if not cmd.startswith(("mkdir", "cp")) else f"source /work/main/.venv/bin/activate && {cmd.replace('python ', 'timeout 240 python ', 1)}"],
                           cwd=root, capture_output=True, text=True)
        results.append(dict(id=i, area=area, what=what, rc=r.returncode, out=clean(r.stdout + r.stderr), s=round(time.time() - t)))
        with open(f"/tmp/h18/probe_{tag}.jsonl", "a") as f:
            f.write(json.dumps(results[-1]) + "\n")
        print(i, r.returncode, round(time.time() - t), what, "::", clean(r.stdout + r.stderr)[-250:].replace("\n", " | "), flush=True)
    json.dump(results, open(f"/tmp/h18/probe_{tag}.json" if not wanted else f"/tmp/h18/probe_{tag}_part.json", "w"), indent=1)
