"""The output-files object of one MD run."""

from __future__ import annotations

from pathlib import Path

import pytest

from gnnff_stability import paths
from gnnff_stability.md import MDRunFiles


def test_in_dir_names_the_files_as_a_campaign_run(tmp_path):
    files = MDRunFiles.in_dir(tmp_path / "run")
    run = {"model": "nequip", "layers": 2, "method": "corr", "seed": 0, "ratio": 1.1, "cell": 0,
           "temp": 1200, "vseed": 0}
    campaign = {k: Path(paths.fill(v, run)) for k, v in paths.bind("demo").MD_FILES.items()}
    assert {k: p.name for k, p in files.as_dict().items()} == {k: p.name for k, p in campaign.items()}
    assert files.status == tmp_path / "run" / "status.json"
    assert all(p.parent == tmp_path / "run" for p in files.as_dict().values())


def test_from_a_rule_output_mapping(tmp_path):
    names = {"status": "s.json", "dump": "d.lammpstrj", "thermo": "t.csv", "log": "l.lammps", "extra": "x"}
    files = MDRunFiles.from_mapping({k: str(tmp_path / v) for k, v in names.items()})
    assert files.dump == tmp_path / "d.lammpstrj" and isinstance(files.log, Path)
    assert list(files.as_dict()) == ["dump", "log", "thermo", "status"]


def test_a_missing_file_is_named():
    with pytest.raises(ValueError, match=r"\['thermo'\]"):
        MDRunFiles.from_mapping({"dump": "d", "log": "l", "status": "s"})


def test_the_object_is_frozen(tmp_path):
    files = MDRunFiles.in_dir(tmp_path)
    with pytest.raises(AttributeError):
        files.dump = tmp_path / "other"  # type: ignore[misc]
