"""``fig_pair_interaction``: the pair force every trained model learned, per species pair (Rajak et al.).

One panel per species pair of the material (HfO2: Hf–Hf, Hf–O, O–O); one line per trained model (its ``pair_interaction.csv``:
the mean pair force over the test frames in 0.05 Å bins, bins with fewer than :data:`MIN_COUNT` pairs
left out), baselines solid and stabilised methods dashed; the reference potential's isolated-pair curve
(:mod:`gnnff_stability.data.pair_reference`) in black where it exists. Positive is repulsive: a curve
that turns negative at the shortest distances the data reach is the unphysical short-range attraction
Rajak et al. saw before their MD collapsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gnnff_stability.families import model_label  # noqa: E402
from gnnff_stability.settings import MaterialSettings  # noqa: E402

from .labels import pair_dash_names, reference_label  # noqa: E402

__all__ = ["MIN_COUNT", "fig_pair_interaction"]

#: Fewest pairs a bin needs to be drawn.
MIN_COUNT = 5


def _read(path: Any) -> pd.DataFrame | None:
    if not isinstance(path, (str, Path)) or not str(path) or not Path(path).exists():
        return None
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.EmptyDataError):
        return None


def fig_pair_interaction(res: pd.DataFrame, reference: str | Path | None, outputs: Mapping[str, str | Path],
                         save, *, material: MaterialSettings) -> list[Path]:
    """Draw the figure from the run table's ``pair`` column (one CSV per trained model) and the
    reference curve CSV; ``save(fig, outputs, name)`` writes it to its declared files. One panel per
    pair of ``material`` (the CSVs' ``pair`` values ``"<a>-<b>"`` in type order)."""
    pairs = pair_dash_names(material)
    titles = dict(zip(pairs, material.pair_labels.values(), strict=True))
    ref_name = reference_label(material)
    models = res.drop_duplicates(["model", "layers", "method", "seed"]).sort_values(
        ["model", "layers", "method", "seed"])
    ref = _read(reference)
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.4 * len(pairs), 3.8), squeeze=False)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn, lo, hi = 0, np.inf, -np.inf
    for k, rec in enumerate(models.to_dict("records")):
        if int(rec["seed"]) != int(models["seed"].min()):
            continue  # one training seed per method: the figure is about shapes
        table = _read(rec.get("pair"))
        if table is None:
            continue
        label = f"{model_label(rec['model'], rec['family'])} L{rec['layers']} {rec['method']}"
        style = "-" if rec["baseline"] else "--"
        for ax, pair in zip(axes[0], pairs):
            sub = table[(table["pair"] == pair) & (table["count"] >= MIN_COUNT)]
            if sub.empty:
                continue
            ax.plot(sub["r_mid_A"], sub["force_mean_eV_per_A"], style, color=cycle[k % len(cycle)],
                    lw=1.2, label=label)
            lo, hi = min(lo, sub["r_mid_A"].min()), max(hi, sub["r_mid_A"].max())
        drawn += 1
    if drawn == 0:
        for ax in axes[0]:
            ax.text(0.5, 0.5, "no results yet", ha="center", va="center", transform=ax.transAxes, color="0.4")
    lo = 1.0 if not np.isfinite(lo) else max(0.8, lo - 0.3)
    hi = 6.0 if not np.isfinite(hi) else hi + 0.2
    for ax, pair in zip(axes[0], pairs):
        if ref is not None:
            sub = ref[(ref["pair"] == pair) & ref["r_A"].between(lo, hi)]
            ax.plot(sub["r_A"], sub["force_eV_per_A"], color="k", lw=1.5, label=f"{ref_name} isolated pair (not in-crystal)")
        ax.axhline(0.0, color="0.6", lw=0.8)
        ax.set_xlim(lo, hi)
        ax.set_ylim(-15, 30)
        ax.set_title(titles[pair])
        ax.set_xlabel("r (Å)")
    axes[0][0].set_ylabel("pair force F_ij (eV/Å, + repulsive)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=7, bbox_to_anchor=(0.5, -0.12))
    fig.suptitle("Learned pair interaction per bond type (mean over test frames)")
    fig.tight_layout()
    return save(fig, outputs, "fig_pair_interaction")
