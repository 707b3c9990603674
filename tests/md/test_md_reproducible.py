"""Two embedded MD runs with the same model, cell, temperature and velocity seed write the same files, byte for
byte (the dump and the thermo table; ``log.lammps`` and ``status.json`` carry wall times)."""

from __future__ import annotations

import pytest

from gnnff_stability.md import MDRunFiles, run_md
from gnnff_stability.settings import MDSettings
from partial_settings import partial

pytestmark = pytest.mark.slow

SETTINGS = {"steps": 40, "dump_every": 10, "thermo_every": 10}


@pytest.mark.parametrize("threads", [1, 2])
def test_same_model_and_seeds_write_identical_dumps(toy_model, triclinic_cell, tmp_path, threads, hfo2_material):
    files = [MDRunFiles.in_dir(tmp_path / name) for name in ("a", "b", "other_seed")]
    settings = partial(MDSettings, SETTINGS)
    records = [run_md(toy_model, triclinic_cell, 600.0, seed, settings, hfo2_material, out, threads=threads)
               for out, seed in zip(files, (7, 7, 8))]
    assert [r["classification"] for r in records] == ["stable"] * 3
    assert [r["steps_done"] for r in records] == [SETTINGS["steps"]] * 3
    a, b, other = files
    assert a.dump.read_bytes() == b.dump.read_bytes()
    assert a.thermo.read_bytes() == b.thermo.read_bytes()
    assert a.dump.read_bytes().count(b"ITEM: TIMESTEP") == SETTINGS["steps"] // SETTINGS["dump_every"] + 1
    # the comparison can fail: another velocity seed writes another trajectory
    assert a.dump.read_bytes() != other.dump.read_bytes()
