"""Row lookup by integer ids that exports as a plain GATHER.

Integer TFLite files take runtime-indexed values (an embedding row, a position's rotary angles)
as rows of a constant table: the table is quantized once, exactly, and the lookup is a GATHER,
which LiteRT, TensorFlow Lite Micro and Ethos-U85 run on int8. Computing such values in the graph
instead (COS/SIN of a runtime angle, a CAST of a one-hot comparison) leaves float ops in an int8
file, and an angle quantized to 256 steps over [0, L) loses the position altogether.
"""

import keras
from keras import ops


def take_rows(table, ids):
    """Rows `ids` (any shape, non-negative) of `table` (R, ...): a plain gather.

    On TensorFlow, `keras.ops.take` wraps negative ids (LESS + SELECT around the GATHER), ops that
    TensorFlow Lite Micro and Arm's Ethos-U cannot run; callers pass non-negative ids, so the
    TensorFlow backend gathers directly.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.gather(table, ids)
    return ops.take(table, ids, axis=0)
