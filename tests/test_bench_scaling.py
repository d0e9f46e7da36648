"""Smoke test of the scaling benchmark on toy sizes (the page and plot are written and hold numbers), and
the scaling and profile benchmarks keeping what they measured when a run stops.

No timing thresholds: on a shared two-core machine they would only measure the neighbours.
"""

import json

import pytest

from bench_tables import markdown_rows  # tests/ is on sys.path (rootdir-relative imports)

from benchmarks import scaling


def _m_table(page: str) -> dict[int, list[str]]:
    """The M-sweep table's rows, keyed by M, as lists of cells."""
    rows = markdown_rows(page, "| M | Perceiver latency")
    return {int(m.replace(",", "")): cells for m, cells in rows.items()}


def test_rejects_bad_repeats(tmp_path):
    with pytest.raises(ValueError, match="repeats=0"):
        scaling.run(tmp_path, repeats=0)


@pytest.mark.slow
def test_toy_run_writes_page_and_plot(tmp_path):
    page_path = scaling.run(tmp_path, toy=True)
    assert page_path == tmp_path / "scaling.md"
    assert (tmp_path / "scaling.png").stat().st_size > 0
    page = page_path.read_text()
    rows = _m_table(page)
    assert sorted(rows) == sorted(scaling.TOY.input_sizes)
    for cells in rows.values():
        numbers = [float(cell.replace(",", "")) for cell in cells]  # every toy point runs, so no "-" cells
        assert all(number > 0 for number in numbers), cells
    assert "PASS" in page or "FAIL" in page
    assert "scaling.png" in page


class _Stopped(Exception):
    pass


def test_a_stopped_run_keeps_its_points_and_a_rerun_measures_only_the_rest(tmp_path, monkeypatch):
    measured, stop = [], [True]

    def fake_worker(job, timeout_s):
        measured.append((job["run"], job["inputs"], job["outputs"]))
        if stop[0] and len(measured) == 3:
            raise _Stopped  # a crash or Ctrl-C during the third point
        return {"latency_s": 0.01 * job["inputs"], "memory_mib": 1.0 * job["inputs"]}

    monkeypatch.setattr(scaling.harness, "run_worker", fake_worker)
    with pytest.raises(_Stopped):
        scaling.run(tmp_path, toy=True)
    journal = tmp_path / ".scaling.partial.json"
    assert len(scaling._Journal(journal)) == 2  # the two points measured before the interruption
    first_two = list(measured[:2])
    measured.clear()
    stop[0] = False
    scaling.run(tmp_path, toy=True)
    assert not set(measured) & set(first_two)  # not measured again
    assert (tmp_path / "scaling.md").exists() and not journal.exists()


def test_profile_keeps_each_measured_engine_before_a_crash(tmp_path, monkeypatch):
    from benchmarks import profile

    calls = []

    def fake_worker(job):
        calls.append(job)
        if len(calls) == 2:
            raise _Stopped
        return {"matmul_ms": 1.0}

    monkeypatch.setattr(profile.harness, "run_worker", fake_worker)
    with pytest.raises(_Stopped):
        profile.run(tmp_path, repeats=1)
    kept = json.loads((tmp_path / "profile.json").read_text())["rounds"]
    assert kept == [{next(iter(profile.ENGINES)): {"matmul_ms": 1.0}}]
