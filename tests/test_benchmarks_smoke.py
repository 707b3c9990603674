"""Every benchmark still runs: ``benchmarks/bench_*.py --smoke`` as a subprocess (a few steps each).

The list is taken from the directory, so a new benchmark without a smoke mode fails here. The
figures themselves come only from full runs; what is checked here is that each script imports,
parses its options and goes through every code path it times, and that the numbers it writes hang
together (a ratio printed for a mode is that mode's time over the baseline's).
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((REPO / "benchmarks").glob("bench_*.py"))
TIMEOUT_S = 900


def _run(script: Path, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if _plugin() is None:
        env.pop("GNNFF_LAMMPS_PLUGIN", None)
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke", *args], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{script.name} --smoke failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def _plugin() -> str | None:
    path = os.environ.get("GNNFF_LAMMPS_PLUGIN")
    return path if path and Path(path).is_file() else None


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _check_ratios(rows: list[dict[str, str]]) -> None:
    """Each model has one baseline row (ratio 1); every other mode's fastest-block ratio is its fastest
    block time over the baseline's, and every time is positive."""
    models = {(r["benchmark"], r["family"], r["size"]) for r in rows}
    for key in models:
        group = [r for r in rows if (r["benchmark"], r["family"], r["size"]) == key]
        base = [r for r in group if r["mode"] == "baseline"]
        assert len(base) == 1 and float(base[0]["ratio"]) == 1.0, group
        for r in group:
            assert float(r["s_per_step"]) > 0 and float(r["s_per_step_min"]) > 0, r
            assert int(r["atoms"]) == 96 * int(r["batch"]), r
            if r["mode"] != "baseline" and r["ratio_fastest"]:
                expected = float(r["s_per_step_min"]) / float(base[0]["s_per_step_min"])
                assert float(r["ratio_fastest"]) == pytest.approx(expected, rel=1e-4), r


def test_every_benchmark_has_a_smoke_mode():
    assert BENCHMARKS, "no benchmarks/bench_*.py found"
    for script in BENCHMARKS:
        assert "--smoke" in script.read_text(), f"{script.name} has no --smoke option"


def test_corr_overhead_smoke(tmp_path):
    out = tmp_path / "rows.csv"
    proc = _run(REPO / "benchmarks" / "bench_corr_overhead.py", "--csv", str(out), tmp_path=tmp_path)
    rows = _rows(out)
    # config/config.yaml trains NequIP and Allegro; each gets a baseline and a corr row
    assert sorted((r["family"], r["mode"]) for r in rows) == [
        ("allegro", "baseline"), ("allegro", "corr"), ("nequip", "baseline"), ("nequip", "corr")]
    _check_ratios(rows)
    for r in rows:
        if r["mode"] == "corr":
            assert 0.0 < float(r["profiler_share"]) < 1.0, r
            assert float(r["ratio_lo95"]) <= float(r["ratio"]) <= float(r["ratio_hi95"]), r
    assert "profiler: correlation loss" in proc.stdout


def test_stabilisers_smoke(tmp_path):
    out = tmp_path / "rows.csv"
    _run(REPO / "benchmarks" / "bench_stabilisers.py", "--family", "nequip", "--csv", str(out), tmp_path=tmp_path)
    rows = _rows(out)
    assert [r["mode"] for r in rows] == ["baseline", "sam", "sam_adaptive", "zbl", "decomposed"]
    _check_ratios(rows)


def test_gemnet_smoke(tmp_path):
    out = tmp_path / "rows.csv"
    proc = _run(REPO / "benchmarks" / "bench_gemnet.py", "--csv", str(out), tmp_path=tmp_path)
    rows = _rows(out)
    assert [(r["family"], r["mode"]) for r in rows] == [("gemnet", "baseline"), ("gemnet", "corr")]
    _check_ratios(rows)
    for part in ("[1] force call", "[2] correlation-loss overhead", "[3] training step"):
        assert part in proc.stdout


def test_stability_smoke(tmp_path):
    proc = _run(REPO / "benchmarks" / "bench_stability.py", tmp_path=tmp_path)
    # 2x2x2 and 3x3x3 fluorite cells: 12 atoms per cell
    assert f"{96:>8d}" in proc.stdout and f"{324:>8d}" in proc.stdout


@pytest.mark.skipif(importlib.util.find_spec("lammps") is None, reason="the lammps Python module is not installed")
def test_md_smoke(tmp_path):
    proc = _run(REPO / "benchmarks" / "bench_md.py", "--workdir", str(tmp_path / "work"), tmp_path=tmp_path)
    assert "[1] engine overhead" in proc.stdout and "[2] LAMMPS embedded vs ASE" in proc.stdout


def test_hpc_plugin_smoke(tmp_path):
    """Imports and parses its options everywhere; the benchmark itself runs only with a plugin."""
    proc = _run(REPO / "benchmarks" / "bench_hpc_plugin.py", "--workdir", str(tmp_path / "work"), tmp_path=tmp_path)
    if _plugin() is None:
        assert "SKIPPED the benchmark: no plugin given" in proc.stdout
        print(proc.stdout)
    else:
        assert "speed-up hpc loop over embedded eager" in proc.stdout
