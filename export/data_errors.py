"""Damaged data files met inside tf.data pipelines, reported by their path (shared by `python -m export` and `-m zoo`).

The readers (`zoo.decoding`, `zoo.optical_flow.formats.decode_flo`) name the file ("Cannot decode the
image file ...", "Corrupt .flo file ..."), but tf.data re-raises their errors as a `tf.errors.OpError`
whose message wraps that text in graph context and a Python traceback; `data_file_error` finds it.
"""

from __future__ import annotations

import re
import sys

_DATA_FILE_ERROR = re.compile(r"(Cannot decode the .*? file .*|Corrupt \.flo file .*)")


def data_file_error(error: BaseException) -> str | None:
    """The message of a damaged data file met inside a tf.data pipeline, without TensorFlow's graph context.

    Returns None for any other error (which then stays a traceback: it is a bug, not an input).
    """
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(error, tf.errors.OpError):
        return None
    found = _DATA_FILE_ERROR.search(error.message)
    if found is None:
        return None
    text = found.group(1).strip().replace('\\"', '"')
    text = text[:-1] if text.endswith("]") and text.count("]") > text.count("[") else text
    return re.sub(r'^(Corrupt \.flo file )"(.*?)":', r"\1\2:", text)  # tf.strings.format quotes the path
