"""Benchmarks: our Keras model (TensorFlow, XLA, mixed bfloat16, TFLite, JAX) beside transformers' PyTorch Perceiver.

`python -m benchmarks --help` lists the suites; results go to `benchmarks/results/`.
"""
