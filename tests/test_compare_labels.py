"""benchmarks/compare_labels.py on two hand-built campaigns: the ratios, classifications and costs it prints."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from gnnff_stability.paths import bind, fill

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("compare_labels", REPO / "benchmarks" / "compare_labels.py")
assert _spec is not None and _spec.loader is not None
compare_labels = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compare_labels)


def _campaign(base: Path, campaign: str, label: str, rms: float, fmae: dict[str, float],
              runs: dict[tuple[str, float], tuple[str, float]]) -> Path:
    root = base / "results" / campaign
    (root / "data" / "reference").mkdir(parents=True)
    stats = {split: {"n_frames": n, "force_component_rms_eV_per_A": rms if split == "test" else 9.0}
             for split, n in (("train", 8), ("valid", 1), ("test", 1))}
    labeller = {"label": label, "wall_s": 20.0, "s_per_frame": 2.0, "threads": 1}
    if label == "chgnet":
        labeller["cpu_s_per_frame"] = 1.5
    meta = {"labeller": labeller, "statistics": stats, "wall_s": 50.0}
    (root / "data" / "reference" / "meta.json").write_text(json.dumps(meta))
    for method, value in fmae.items():
        path = base / fill(bind(campaign).TRAIN_FILES["metrics"], {"model": "nequip", "layers": 2,
                                                                    "method": method, "seed": 0})
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"model": "nequip", "layers": 2, "method": method, "corr_value": 0.5,
                                    "fmae_meV_per_A": value}))
    for (method, ratio), (classification, s_index) in runs.items():
        run = {"model": "nequip", "layers": 2, "method": method, "seed": 0, "ratio": ratio, "cell_seed": 0,
               "temp_K": 1200, "vseed": 0}
        path = base / fill(bind(campaign).SCORE_FILES["score"], run)
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"classification": classification, "s_index": s_index}))
    return root


def test_compare_two_campaigns(tmp_path):
    comb = _campaign(tmp_path, "a", "comb", 1.5, {"baseline": 300.0, "sam": 1.0},
                     {("baseline", 1.1): ("stable", 0.9), ("baseline", 2.0): ("fail", 0.8)})
    chgnet = _campaign(tmp_path, "b", "chgnet", 1.2, {"baseline": 240.0},
                       {("baseline", 1.1): ("crash", 0.0)})
    lines = compare_labels.compare([chgnet, comb], ("baseline", "corr"), (1.1, 2.0)).splitlines()
    rows = [line for line in lines if line.startswith("| nequip")]
    # FMAE over each campaign's own test force RMS: 300 / 1500 and 240 / 1200; sam is not asked for;
    # rows by model, method, then labels
    assert rows == [
        "| nequip | 2 | baseline | chgnet | 240.0 | 0.200 | 0.5000 | crash 0.0000 | — |",
        "| nequip | 2 | baseline | comb | 300.0 | 0.200 | 0.5000 | stable 0.9000 | fail 0.8000 |",
    ]
    assert "| chgnet | 10 | 20.0 | 2.00 | 1.50 | 1 | 50.0 | 9.000 / 9.000 / 1.200 |" in lines
    assert "| comb | 10 | 20.0 | 2.00 | — | 1 | 50.0 | 9.000 / 9.000 / 1.500 |" in lines
