"""The user-paths benchmark runs every path on one model and checks they compute the same function."""

import json

import pytest

from benchmarks.__main__ import main
from benchmarks.user_paths import PATHS


@pytest.mark.slow
def test_every_user_path_is_timed_and_computes_the_compiled_models_outputs(tmp_path):
    assert main(["user-paths", "--presets", "digits", "--rounds", "1", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "user_paths.json").read_text())["presets"]["digits"]
    assert set(results) == set(PATHS)
    for run in results.values():
        assert run["median_s"] > 0 and run["max_abs_diff"] < 1e-5
    assert (tmp_path / "user_paths.md").read_text().count("| digits |") == len(PATHS)


def test_rounds_below_one_are_refused(capsys):
    with pytest.raises(SystemExit):
        main(["user-paths", "--rounds", "0"])
    assert "--rounds must be >= 1. Received: --rounds 0" in capsys.readouterr().err
