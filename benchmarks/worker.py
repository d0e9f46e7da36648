"""One measurement in a fresh process: `python -m benchmarks.worker '{"run": "module:function", ...}'`.

The job's `run` names a function that takes the job dict and returns a JSON-able dict; the worker
adds its process's peak memory and prints the result on a marked line for `harness.run_worker`.
"""

import importlib
import json
import sys
import traceback

from benchmarks import harness


def main(argv: list[str]) -> int:
    job = json.loads(argv[0])
    module_name, _, function_name = job["run"].partition(":")
    try:
        result = getattr(importlib.import_module(module_name), function_name)(job)
    except MemoryError:
        result = {"error": "out of memory (MemoryError)"}
    except Exception as error:  # Reported in the results table; the run goes on with other jobs.
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
    result.setdefault("process_peak_rss_mib", harness.memory_mib()["peak_rss_mib"])
    harness.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
