"""The demo's models on two label sets: one campaign against another, run by run.

Reads two finished campaigns that share models, methods and cells but not their labels (``results/demo``,
COMB labels, and ``results/labels_chgnet``, ``config/labels_chgnet.yaml``) and prints, in Markdown:

- per model x method: FMAE (meV/Å), FMAE over the force-component RMS of the campaign's own test set, the
  Corr value (each training's ``train/.../metrics.json``, as Table 2), and per cell the classification and
  S_index (each run's ``analysis/.../stability.json``);
- per campaign: its labeller, the labelling time in total and per frame, and the force-component RMS of
  each split (``data/reference/meta.json``).

Usage::

    .venv/bin/python benchmarks/compare_labels.py results/demo results/labels_chgnet
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gnnff_stability.paths import bind, fill


def _file(root: Path, path: str) -> Path:
    """A path of the campaign whose results root is ``root`` (``<repository>/results/<campaign>``)."""
    return root.parent.parent / path


def _meta(root: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(_file(root, bind(root.name).DATA_FILES["meta"]).read_text())
    return meta


def _trainings(root: Path, method: str) -> list[dict[str, Any]]:
    """The metrics.json of every training (seed 0) of one method, any model and layer count."""
    pattern = bind(root.name).TRAIN_FILES["metrics"].format(model="*", layers="*", method=method, seed=0)
    return [json.loads(path.read_text()) for path in sorted(root.parent.parent.glob(pattern))]


def _run(root: Path, train: dict[str, Any], ratio: float, temp_K: float) -> dict[str, Any] | None:
    """The stability.json of one run (seed 0, cell seed 0, velocity seed 0), or None where it is missing."""
    run = {"model": train["model"], "layers": train["layers"], "method": train["method"], "seed": 0,
           "ratio": ratio, "cell_seed": 0, "temp_K": temp_K, "vseed": 0}
    path = _file(root, fill(bind(root.name).SCORE_FILES["score"], run))
    return json.loads(path.read_text()) if path.exists() else None


def compare(roots: list[Path], methods: tuple[str, ...], ratios: tuple[float, ...], temp_K: float = 1200.0) -> str:
    """The comparison tables of the campaigns under ``roots`` (Markdown)."""
    lines = ["| model | L | method | labels | FMAE meV/Å | FMAE / test force RMS | Corr value | "
             + " | ".join(f"1:{r:g}" for r in ratios) + " |",
             "|---" * (7 + len(ratios)) + "|"]
    rows = []
    for root in roots:
        meta = _meta(root)
        rms_meV = 1000.0 * meta["statistics"]["test"]["force_component_rms_eV_per_A"]
        for method in methods:
            for train in _trainings(root, method):
                cells = []
                for ratio in ratios:
                    run = _run(root, train, ratio, temp_K)
                    cells.append("—" if run is None else f"{run['classification']} {run['s_index']:.4f}")
                fmae = float(train["fmae_meV_per_A"])
                rows.append(((train["model"], methods.index(method), meta["labeller"]["label"]),
                             f"| {train['model']} | {train['layers']} | {method} | {meta['labeller']['label']} | "
                             f"{fmae:.1f} | {fmae / rms_meV:.3f} | {float(train['corr_value']):.4f} | "
                             + " | ".join(cells) + " |"))
    lines += [text for _, text in sorted(rows)]
    lines += ["", "| labels | frames | labelling s | s per frame | CPU s per frame | threads | data set s "
              "(sampling + labelling) | force RMS train / valid / test eV/Å |", "|---" * 8 + "|"]
    for root in roots:
        meta = _meta(root)
        lab, stats = meta["labeller"], meta["statistics"]
        n = sum(stats[s]["n_frames"] for s in ("train", "valid", "test"))
        rms = " / ".join(f"{stats[s]['force_component_rms_eV_per_A']:.3f}" for s in ("train", "valid", "test"))
        cpu = f"{lab['cpu_s_per_frame']:.2f}" if "cpu_s_per_frame" in lab else "—"
        lines.append(f"| {lab['label']} | {n} | {lab['wall_s']:.1f} | {lab['s_per_frame']:.2f} | {cpu} | "
                     f"{lab.get('threads', meta.get('threads', '—'))} | {meta['wall_s']:.1f} | {rms} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=Path, help="campaign results roots, e.g. results/demo")
    parser.add_argument("--methods", nargs="+", default=["baseline", "corr"])
    parser.add_argument("--ratios", nargs="+", type=float, default=[1.10, 1.55, 2.00])
    parser.add_argument("--temp-K", type=float, default=1200.0)
    args = parser.parse_args()
    print(compare(args.roots, tuple(args.methods), tuple(args.ratios), args.temp_K))


if __name__ == "__main__":
    main()
