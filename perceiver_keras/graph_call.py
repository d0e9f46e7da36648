"""`model(x)` at graph speed on TensorFlow: an eager call of a built model runs through a cached `tf.function`.

Keras runs a functional model called eagerly layer by layer, op by op: on TensorFlow that skips
Grappler's rewrites and oneDNN's fused kernels, and the ImageNet Fourier preset took about twice as
long as the same call inside `tf.function` (benchmarks/results/inference_quick.md, `user-call` and
`user-tf-function`). So `PerceiverIO` and `MultimodalPerceiverIO` route an eager call on concrete
inputs through one `tf.function` per model (`reduce_retracing=True`: a new batch size does not
retrace each time). The result, its gradients under a `tf.GradientTape` and the variables' updates
are those of the eager call. Symbolic calls (building a bigger functional model), calls inside the
user's own `tf.function`, and the JAX and PyTorch backends are left to Keras.

`model.graph_call = False` turns this off, e.g. to step through the layers in a debugger.
"""

from __future__ import annotations

from typing import Any

import keras


class GraphCall:
    """Mixin for a `keras.Model` subclass: `_graph_call(call, args, kwargs)` or None when Keras' own path applies."""

    graph_call = True

    def _graph_call_function(self, call):
        import tensorflow as tf

        function = self.__dict__.get("_graph_call_cache")
        if function is None:
            function = tf.function(call, reduce_retracing=True, autograph=False)
            self.__dict__["_graph_call_cache"] = function  # not a tracked attribute: no weights, not saved
        return function

    def _graph_call(self, call, args: tuple, kwargs: dict[str, Any]):
        """`call(*args, **kwargs)` through the cached tf.function when that is safe, else None."""
        if not self.graph_call or not self.built or keras.backend.backend() != "tensorflow":
            return None
        import tensorflow as tf

        if not tf.executing_eagerly():
            return None
        if any(isinstance(value, keras.KerasTensor) for value in keras.tree.flatten((args, kwargs))):
            return None
        return self._graph_call_function(call)(*args, **kwargs)
