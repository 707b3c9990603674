"""The study report of a campaign: its arms from the run table, its files from Tables A4 and S1."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_builders import HFO2
from study_builders import study_table_a4

from gnnff_stability.grid import study_arms
from gnnff_stability.report.study import write_campaign_study


def test_study_arms_are_the_first_baseline_and_every_other_method():
    runs = pd.DataFrame({"method": ["baseline", "corr", "corr", "sam", "plain"],
                         "baseline": [True, False, False, False, True]})
    assert study_arms(runs) == ("baseline", ["corr", "sam"])
    assert study_arms(runs[runs["method"] == "corr"]) is None  # no baseline to compare with
    assert study_arms(runs[runs["baseline"]]) is None  # nothing to compare


def test_campaign_study_writes_the_declared_files(tmp_path):
    a4 = tmp_path / "tableA4.csv"
    study_table_a4().to_csv(a4, index=False)
    s1 = tmp_path / "tableS1.csv"
    pd.DataFrame(columns=["model", "method"]).to_csv(s1, index=False)  # metrics off: an empty Table S1
    outputs = {"csv": tmp_path / "s" / "a.csv", "md": tmp_path / "s" / "a.md", "km": tmp_path / "k.png"}
    written = write_campaign_study(a4, s1, outputs, arms=("baseline", ["corr"]),
                                   md={"dt_fs": 0.25, "steps": 2000}, material=HFO2)
    assert {k: str(v) for k, v in written.items()} == {k: str(v) for k, v in outputs.items()}
    table = pd.read_csv(outputs["csv"])
    assert set(table["method"]) == {"corr"} and outputs["km"].stat().st_size > 0
    assert "Study table" in outputs["md"].read_text()
    with pytest.raises(ValueError, match="km"):
        write_campaign_study(a4, s1, {"csv": outputs["csv"], "md": outputs["md"]},
                             arms=("baseline", ["corr"]), md={"dt_fs": 0.25, "steps": 2000}, material=HFO2)
