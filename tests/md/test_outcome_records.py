"""The files a run leaves (status.json, thermo.csv, the partial-output renaming) and the thermostat's
keywords of the classification, on hand-built records and tables."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from gnnff_stability.analysis.dump import THERMO_COLUMNS
from gnnff_stability.md.outcome import (
    Outcome,
    PartialOutputs,
    parse_thermo_log,
    status_record,
    thermo_to_csv,
    thermostat_rule,
    write_json,
)
from gnnff_stability.md.protocol import Thermostat
from gnnff_stability.settings import MDSettings
from partial_settings import partial

SETTINGS = partial(MDSettings, {"steps": 400, "dump_every": 40, "thermo_every": 20})


def _thermo(steps) -> pd.DataFrame:
    n = len(steps)
    return pd.DataFrame({"step": np.asarray(steps, dtype=np.int64), "temp_K": np.full(n, 1000.0),
                         "pe_eV": np.full(n, -1.0), "ke_eV": np.full(n, 1.0), "etotal_eV": np.zeros(n),
                         "natoms": np.full(n, 96, dtype=np.int64), "fmax_eV_per_A": np.full(n, 2.0)})


def test_status_record_has_every_field_of_the_contract():
    out = Outcome("fail", "too hot", None, 120)
    rec = status_record(out, SETTINGS, 1200, 300, 96, 95, "embedded", 12.5, 6.0)
    assert rec == {
        "classification": "fail", "reason": "too hot", "crash_step": None, "fail_step": 120,
        "steps_planned": 400, "steps_done": 300, "dump_every": 40, "temp_K": 1200.0,
        "n_atoms_initial": 96, "n_atoms_final": 95, "engine": "embedded", "wall_s": 12.5,
        "s_per_step": 6.0 / 300,
    }
    assert isinstance(rec["temp_K"], float) and isinstance(rec["wall_s"], float)
    rec = status_record(Outcome("crash", "boom", 7), SETTINGS, 900.0, 0, 96, 96, "hpc", 1.0, 0.5)
    assert rec["crash_step"] == 7 and rec["fail_step"] is None and rec["engine"] == "hpc"
    assert math.isnan(rec["s_per_step"])  # no step done: no time per step
    rec = status_record(Outcome("stable", "ok", None), SETTINGS, 900.0, 1, 96, 96, "hpc", 1.0, 0.5)
    assert rec["s_per_step"] == 0.5


def test_write_json_is_indented_with_a_trailing_newline_and_keeps_nan(tmp_path):
    path = tmp_path / "status.json"
    write_json({"a": 1, "b": [1.5, None], "c": float("nan")}, path)
    text = path.read_text()
    assert text == '{\n  "a": 1,\n  "b": [\n    1.5,\n    null\n  ],\n  "c": NaN\n}\n'
    back = json.loads(text)
    assert back["a"] == 1 and back["b"] == [1.5, None] and math.isnan(back["c"])


def test_thermo_csv_has_the_contract_columns_in_order_and_round_trips(tmp_path):
    table = _thermo([0, 20, 40])
    table["temp_K"] = [1234.56789012345, np.nan, np.inf]
    table["extra"] = 1.0  # not a contract column
    table = table[["extra", *reversed(THERMO_COLUMNS)]]
    path = tmp_path / "thermo.csv"
    thermo_to_csv(table, path)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(THERMO_COLUMNS)  # no index column, the contract's order
    back = pd.read_csv(path)
    assert list(back.columns) == list(THERMO_COLUMNS)
    assert back["temp_K"].iloc[0] == pytest.approx(1234.56789, rel=1e-10)  # 10 significant digits
    assert "1234.56789" in lines[1] and "1234.567890123" not in lines[1]
    assert np.isnan(back["temp_K"].iloc[1]) and np.isinf(back["temp_K"].iloc[2])
    np.testing.assert_array_equal(back["step"], [0, 20, 40])


def test_parse_thermo_log_reads_the_blocks_and_keeps_the_last_duplicate(tmp_path):
    header = "Step Temp PotEng KinEng TotEng Atoms c_fmax"
    log = "\n".join([
        "LAMMPS (version)", "5 1 2 3 4 5 6", header,  # a row of numbers before the header is no row
        "0 1200 -10 1 -9 96 0.5",
        "WARNING: something 1 2 3 4 5", "10 1210 -10 1 -9 96 0.6",
        "Loop time of 1.0 on 1 procs for 10 steps",
        "15 1 1 1 1 1 1",  # after "Loop time": outside a block
        header, "10 1220 -10 1 -9 96 0.7", "abc 1 1 1 1 1 1", "20 nan -10 1 -9 94.9999999 inf",
        "Loop time of 1.0 on 1 procs for 10 steps", "",
    ])
    path = tmp_path / "log.lammps"
    # a byte that is not UTF-8 (a path or a message in another encoding) does not stop the reading
    path.write_bytes(log.replace("WARNING: something", "WARNING: caf\xe9").encode("latin-1"))
    t = parse_thermo_log(path)
    assert list(t.columns) == list(THERMO_COLUMNS)
    assert t["step"].tolist() == [0, 10, 20] and t["step"].dtype == np.int64
    assert t["temp_K"].iloc[1] == 1220.0 and math.isnan(t["temp_K"].iloc[2])
    assert t["natoms"].tolist() == [96, 96, 95] and t["natoms"].dtype == np.int64
    assert math.isinf(t["fmax_eV_per_A"].iloc[2])
    empty = tmp_path / "empty.lammps"
    empty.write_text("LAMMPS (version)\nERROR: no run\n")
    t = parse_thermo_log(empty)
    assert t.empty and list(t.columns) == list(THERMO_COLUMNS) and t["natoms"].dtype == np.int64


def test_a_ramp_gives_the_set_point_per_row_and_the_window_in_rows():
    table = _thermo([0, 100, 200, 400])
    kw = thermostat_rule(Thermostat("ramp", t_stop_K=2000.0, window_steps=100), table, 1000.0, SETTINGS)
    assert set(kw) == {"set_point_K", "window_rows"}
    np.testing.assert_allclose(kw["set_point_K"], [1000.0, 1250.0, 1500.0, 2000.0])  # linear over 400 steps
    assert kw["window_rows"] == 100 // 20
    kw = thermostat_rule(Thermostat("ramp", t_stop_K=2000.0, window_steps=59), table, 1000.0, SETTINGS)
    assert kw["window_rows"] == 2  # whole rows: 59 // 20
    kw = thermostat_rule(Thermostat("ramp", t_stop_K=2000.0, window_steps=5), table, 1000.0, SETTINGS)
    assert kw["window_rows"] == 1  # at least one row


@pytest.mark.parametrize("thermostat", [Thermostat(), Thermostat("nve", equil_steps=40), Thermostat("nve")])
def test_a_constant_set_point_adds_no_keywords(thermostat):
    assert thermostat_rule(thermostat, _thermo([0, 20]), 1000.0, SETTINGS) == {}


def test_partial_outputs_rename_on_commit_and_are_removed_on_discard(tmp_path):
    # "thermo" sorts after "status": the status file is still renamed last
    finals = {"status": tmp_path / "run" / "status.json", "dump": tmp_path / "run" / "a" / "b" / "dump.lammpstrj",
              "thermo": tmp_path / "run" / "thermo.csv"}
    stale = tmp_path / "run" / ".status.json.partial"
    stale.parent.mkdir()
    stale.write_text("old attempt")
    out = PartialOutputs(finals)
    assert not stale.exists()  # a killed attempt's partial file is cleared
    assert (tmp_path / "run" / "a" / "b").is_dir()  # output folders are made, with their parents
    assert out["dump"] == tmp_path / "run" / "a" / "b" / ".dump.lammpstrj.partial"
    for key in finals:
        out[key].write_text(key)
    out.discard()
    assert not out["dump"].exists() and not out["status"].exists()
    assert not finals["dump"].exists() and not finals["status"].exists()
    out.discard()  # nothing left to remove is fine
    out["dump"].write_text("dump")
    out["status"].write_text("status")
    with pytest.raises(FileNotFoundError, match=r"output 'thermo' was not written \(expected .*\.thermo\.csv\.partial\)"):
        out.commit()
    assert finals["dump"].read_text() == "dump"
    assert not finals["status"].exists()  # the status file comes last: not renamed while one is missing
    for key in finals:
        out[key].write_text(f"{key} 2")
    out.commit()
    assert finals["status"].read_text() == "status 2" and finals["dump"].read_text() == "dump 2"
    assert not out["status"].exists() and not out["dump"].exists()
