"""A rerun after a settings change trains afresh instead of resuming the finished training.

Through the real Snakemake and nequip-train: a tiny correlation-loss model is trained, its ``c_max`` is
changed, and Snakemake reruns ``train_model`` for the new params. The finished training's ``last.ckpt`` is
still in the run directory; it must not be resumed: the log and ``metrics.json`` say so, and the new
weights differ from the old ones.
"""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from workflow_helpers import copy_workflow, run_snakemake

pytestmark = pytest.mark.slow

TRAIN = "results/resume/train/nequip/L2/corr/seed0"
LOG = "results/resume/logs/train/nequip/L2/corr/seed0/train_model.log"


def _config(workdir, c_max):
    """config/test.yaml cut to one correlation-loss training of two epochs, with the given c_max."""
    config = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    config["campaign"] = "resume"
    config["grid"].update(method=["corr"], ratio=[1.10], exclude=[])
    config["methods"] = {"corr": config["methods"]["corr"]}
    config["methods"]["corr"]["corr"]["c_max"] = c_max
    config["training"]["max_epochs"] = 2
    (workdir / "config" / "resume.yaml").write_text(yaml.safe_dump(config))


def _train(workdir):
    return run_snakemake(f"{TRAIN}/metrics.json", "--cores", "2", "--configfile", "config/resume.yaml",
                         cwd=workdir, timeout=1200)


def _weights(workdir):
    ckpt = torch.load(workdir / TRAIN / "run" / "last.ckpt", map_location="cpu", weights_only=False)
    return {k: v.clone() for k, v in ckpt["state_dict"].items() if torch.is_tensor(v) and v.is_floating_point()}


def test_a_changed_setting_trains_afresh(tmp_path):
    workdir = copy_workflow(tmp_path)
    _config(workdir, c_max=0.1)
    _train(workdir)
    first = json.loads((workdir / TRAIN / "metrics.json").read_text())
    assert not first["resumed"] and first["epochs"] == 2
    old = _weights(workdir)

    _config(workdir, c_max=0.05)
    proc = _train(workdir)
    assert "rule train_model" in proc.stdout + proc.stderr  # Snakemake reran it for the changed params
    log = (workdir / LOG).read_text()
    assert "resuming from" not in log
    assert "not resuming" in log and "under other settings" in log
    again = json.loads((workdir / TRAIN / "metrics.json").read_text())
    assert not again["resumed"] and again["epochs"] == 2
    new = _weights(workdir)
    assert new.keys() == old.keys() and len(old) > 0
    assert any(not torch.equal(old[k], new[k]) for k in old)
    # only the new training's CSV log is left in the run directory
    assert sorted(p.name for p in (workdir / TRAIN / "run" / "csv").iterdir()) == ["version_0"]
