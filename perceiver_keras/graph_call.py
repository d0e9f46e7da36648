"""`model(x)` at graph speed on TensorFlow: an eager call of a built model runs through a cached `tf.function`.

Keras runs a functional model called eagerly layer by layer, op by op: on TensorFlow that skips
Grappler's rewrites and oneDNN's fused kernels, and the ImageNet Fourier preset took about twice as
long as the same call inside `tf.function` (benchmarks/results/inference_quick.md, `user-call` and
`user-tf-function`). So `PerceiverIO` and `MultimodalPerceiverIO` route an eager call on concrete
inputs through one `tf.function` per model (`reduce_retracing=True`: a new batch size does not
retrace each time). The result, its gradients under a `tf.GradientTape` and the variables' updates
are those of the eager call. Symbolic calls (building a bigger functional model), calls inside the
user's own `tf.function`, and the JAX and PyTorch backends are left to Keras.

`model.predict(x)` of in-memory arrays (a NumPy array or a dict of them) takes the same road on
TensorFlow: batches of `batch_size` through one cached `tf.function` (XLA when the model was compiled
with `jit_compile=True`), with Keras' progress bar. Keras' own `predict` builds a `tf.data` iterator
on every call, which cost 75 ms a call on the digits model (17x the model itself) and 10% on the
ImageNet Fourier preset. A `tf.data.Dataset`, a generator, `steps` or `callbacks`, a distribution
strategy, and the JAX and PyTorch backends keep Keras' `predict`.

`model.graph_call = False` turns both off, e.g. to step through the layers in a debugger.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import numpy as np


class GraphCall:
    """Mixin for a `keras.Model` subclass: `_graph_call(call, args, kwargs)` or None when Keras' own path applies."""

    graph_call = True

    def _graph_call_function(self, call):
        import tensorflow as tf

        # In a plain dict, set past Keras' attribute tracking: TensorFlow's SavedModel saves every tf.function
        # that is an attribute of a saved object (Keras hides its own predict_function for the same reason).
        cache = self.__dict__.setdefault("_graph_call_cache", {})
        if "call" not in cache:
            cache["call"] = tf.function(lambda inputs, training: call(inputs, training=training),
                                        reduce_retracing=True, autograph=False)
        return cache["call"]

    def _graph_call(self, call, args: tuple, kwargs: dict[str, Any]):
        """`call(inputs, training=...)` through the cached tf.function when that is safe, else None.

        Only the plain call, `model(inputs)` or `model(inputs, training=...)`, takes it: one signature, so that
        `reduce_retracing` never has to relate calls of different argument lists. A model compiled with
        `run_eagerly=True` (to debug) keeps Keras' eager path.
        """
        if (not self.graph_call or not self.built or keras.backend.backend() != "tensorflow"
                or getattr(self, "_run_eagerly", False)):
            return None
        import tensorflow as tf

        if not tf.executing_eagerly():
            return None
        if len(args) + ("inputs" in kwargs) != 1 or set(kwargs) - {"inputs", "training"}:
            return None
        inputs = args[0] if args else kwargs["inputs"]
        training = kwargs.get("training")
        if any(isinstance(value, keras.KerasTensor) for value in keras.tree.flatten(inputs)):
            return None
        if training is not None and not isinstance(training, bool):
            return None  # a tensor: Keras' own handling
        return self._graph_call_function(call)(inputs, training)

    def _fast_predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """`predict` of in-memory arrays through a cached tf.function; None when Keras' own `predict` applies."""
        if (not self.graph_call or steps is not None or callbacks or keras.backend.backend() != "tensorflow"
                or not self.built):
            return None
        import tensorflow as tf

        if not tf.executing_eagerly() or tf.distribute.has_strategy() or getattr(self, "_distribute_strategy", None):
            return None
        if isinstance(x, np.ndarray):
            arrays = x
        elif isinstance(x, Mapping) and x and all(isinstance(v, np.ndarray) for v in x.values()):
            arrays = dict(x)
        else:
            return None
        lengths = {len(v) for v in keras.tree.flatten(arrays)}
        if len(lengths) != 1 or 0 in lengths:
            return None  # Keras' own messages
        (count,) = lengths
        batch_size = int(batch_size or 32)
        num_batches = -(-count // batch_size)
        function = self._predict_function()
        progress = None if verbose == 0 else keras.utils.Progbar(num_batches, verbose=1 if verbose == "auto" else verbose)
        outputs = []
        for index in range(num_batches):
            batch = keras.tree.map_structure(lambda v: v[index * batch_size:(index + 1) * batch_size], arrays)
            outputs.append(keras.tree.map_structure(lambda t: t.numpy(), function(batch)))
            if progress is not None:
                progress.update(index + 1)
        return keras.tree.map_structure(lambda *parts: np.concatenate(parts, axis=0), *outputs)

    def _predict_function(self):
        import tensorflow as tf

        jit = bool(self.jit_compile)
        cache = self.__dict__.setdefault("_predict_cache", {})
        if jit not in cache:
            cache[jit] = tf.function(lambda inputs: keras.Model.__call__(self, inputs, training=False),
                                     reduce_retracing=True, jit_compile=jit, autograph=False)
        return cache[jit]


class CheckedCalls(GraphCall):
    """The entry points of `PerceiverIO` and `MultimodalPerceiverIO`: inputs checked, then the graph-speed paths.

    The model class provides `check_inputs(inputs)` and `_check_arrays(x)`; `check_training_calls`
    says whether a `training=True` call is checked too.
    """

    check_training_calls = True

    def __call__(self, *args, **kwargs):
        # Before Layer.__call__, whose error wrapper would append every input array to the message.
        if self.check_training_calls or not kwargs.get("training"):
            self.check_inputs(args[0] if args else kwargs.get("inputs"))
        outputs = self._graph_call(super().__call__, args, kwargs)  # eager TensorFlow: at graph speed
        return super().__call__(*args, **kwargs) if outputs is None else outputs

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        self._check_arrays(x)
        outputs = self._fast_predict(x, batch_size, verbose, steps, callbacks)  # in-memory arrays on TensorFlow
        if outputs is None:
            outputs = super().predict(x, batch_size=batch_size, verbose=verbose, steps=steps, callbacks=callbacks)
        return outputs

    def evaluate(self, x=None, *args, **kwargs):
        self._check_arrays(x)
        return super().evaluate(x, *args, **kwargs)

    def fit(self, x=None, *args, **kwargs):
        self._check_arrays(x)
        return super().fit(x, *args, **kwargs)
