"""The paper's figures from whatever per-run results exist (matplotlib, Agg; PNG and PDF).

Six figures with fixed names (:data:`gnnff_stability.paths.FIGURE_NAMES`), each written to its declared
files, one per format of :data:`gnnff_stability.paths.FIGURE_FORMATS`; a figure whose data are missing says so
on its canvas instead of failing:

- ``fig3_corr_vs_stability``: last-layer Corr value vs S_index, one panel per model, baseline vs every
  stabilised method (each point labelled with its method), colour = the cell's ratio along the
  material's OOD axis (the legend lists the grid's ratios), label = layers (the paper's Figs. 3 and 4).
- ``fig7_rdf``: partial RDFs of baseline and methods beside the reference MD (the paper's Fig. 7),
  one row per model/layers/ratio, one column per species pair.
- ``fig_sn_curves``: s_n along each run, one panel per model/layers and ratio.
- ``fig5_snapshots``: last frame of a crashed (or failed) run and of a stable run, projected on
  the xy plane, with force arrows (the paper's Fig. 5).
- ``fig_outcomes``: the classification of every run, one row per trained model, one column per cell
  and temperature (:mod:`.outcomes`).
- ``fig_pair_interaction``: the pair force each trained model learned per species pair, beside the
  reference potential's (:mod:`.fig_pair`; the diagnostic of Rajak et al.).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gnnff_stability.analysis.dump import DumpReader, Snapshot  # noqa: E402
from gnnff_stability.families import model_label  # noqa: E402
from gnnff_stability.paths import FIGURE_FORMATS, FIGURE_NAMES  # noqa: E402
from gnnff_stability.settings import MaterialSettings  # noqa: E402

from .collect import collect_results  # noqa: E402
from .fig_pair import fig_pair_interaction  # noqa: E402
from .labels import ratio_axis, ratio_label, reference_label  # noqa: E402
from .outcomes import outcome_grid  # noqa: E402

__all__ = ["FIGURE_NAMES", "fig_corr_vs_stability", "make_figures", "ratio_colours"]

logger = logging.getLogger(__name__)

#: The paper's three cells keep their colours; any other ratio of a grid takes the next of _SPARE_COLOURS.
_RATIO_COLOURS = {"1.10": "tab:red", "1.55": "tab:orange", "2.00": "tab:blue"}
_SPARE_COLOURS = ("tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray")
_MAX_RDF_ROWS = 12
#: Marker colour and size of each LAMMPS type in the snapshot figure (type 1 first; cycled beyond).
_TYPE_COLOURS = ("tab:cyan", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:pink")
_TYPE_SIZES = (60, 25, 40, 35, 30, 45, 50)


def _exists(path: Any) -> bool:
    return isinstance(path, (str, Path)) and str(path) != "" and Path(path).exists()


def _no_data(ax, text: str = "no results yet") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, outputs: Mapping[str, str | Path], name: str) -> list[Path]:
    """Write ``fig`` to its declared file of each format (``outputs["<name>_<ext>"]``)."""
    paths = []
    for ext in FIGURE_FORMATS:
        path = Path(outputs[f"{name}_{ext}"])
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(fig)
    return paths


def ratio_colours(ratios: Iterable[str]) -> dict[str, str]:
    """The colour of each ratio token of a grid, in ascending order of the ratio (figure legends)."""
    tokens = sorted({str(r) for r in ratios}, key=float)
    spare = iter(_SPARE_COLOURS * (1 + len(tokens) // len(_SPARE_COLOURS)))
    return {ratio: _RATIO_COLOURS.get(ratio) or next(spare) for ratio in tokens}


def _method_styles(methods: list[str], baselines: set[str]) -> dict[str, dict]:
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    styles, k = {}, 0
    for m in methods:
        if m in baselines:
            styles[m] = {"color": "0.3", "marker": "o", "ls": "-"}
        else:
            styles[m] = {"color": cycle[(k + 2) % len(cycle)], "marker": "^", "ls": "-"}
            k += 1
    return styles


def fig_corr_vs_stability(res: pd.DataFrame, baselines: set[str], temp: int | None, *, axis: str):
    """Fig. 3: Corr value vs S_index of every run of ``res`` (:func:`~.collect.collect_results`) at ``temp``.

    The legend's ratios are those of the run table (the grid's), whether or not they have results yet,
    labelled along ``axis`` (:func:`~.labels.ratio_axis`, ``"Hf:O"``).
    """
    colour = ratio_colours(res["ratio"].dropna().unique())
    sub = res[(res["temp_K"] == temp) & res["s_index"].notna() & res["corr_value"].notna()] \
        if temp is not None else res.iloc[:0]
    models = sorted(sub["model"].unique()) or ["(none)"]
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 4.0), squeeze=False)
    for ax, model in zip(axes[0], models):
        msub = sub[sub["model"] == model]
        if msub.empty:
            _no_data(ax)
            continue
        groups = msub.groupby(["layers", "method", "ratio"], dropna=False)
        for (layers, method, ratio), g in groups:
            base = method in baselines
            ax.errorbar(g["corr_value"].mean(), g["s_index"].mean(),
                        yerr=g["s_index"].std() if len(g) > 1 else None,
                        marker="o" if base else "^", ms=7, color=colour.get(ratio, "tab:gray"),
                        mfc="none" if base else colour.get(ratio, "tab:gray"), ls="none", capsize=2)
            ax.annotate(f"L{layers} {method}", (g["corr_value"].mean(), g["s_index"].mean()),
                        fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_title(model_label(model, msub["family"].iloc[0]))
        ax.set_xlabel("last-layer Corr value")
        ax.set_ylabel("S_index")
        ax.set_ylim(-0.05, 1.05)
    handles = [plt.Line2D([], [], color=c, marker="s", ls="none", label=ratio_label(axis, r))
               for r, c in colour.items()]
    handles += [plt.Line2D([], [], color="k", marker="o", mfc="none", ls="none", label="baseline"),
                plt.Line2D([], [], color="k", marker="^", ls="none", label="stabilised")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, bbox_to_anchor=(0.5, -0.08))
    fig.suptitle(f"Corr value vs stability (T = {temp} K)" if temp is not None else
                 "Corr value vs stability")
    return fig


def _first_runs(sub: pd.DataFrame, column: str) -> pd.DataFrame:
    """One run per (model, layers, method, ratio): the lowest seeds with an existing file."""
    ok = sub[np.array([_exists(p) for p in sub[column]], dtype=bool)]
    return ok.sort_values(["seed", "cell_seed", "vseed"]).drop_duplicates(["model", "layers", "method", "ratio"])


def _fig_rdf(res: pd.DataFrame, baselines: set[str], temp, outputs: Mapping[str, str | Path],
             material: MaterialSettings) -> list[Path]:
    pair_names, labels, axis = material.pair_names, material.pair_labels, ratio_axis(material)
    reference = f"reference ({reference_label(material)} MD)"
    sub = _first_runs(res[res["temp_K"] == temp] if temp is not None else res.iloc[:0], "rdf_csv")
    combos = sorted(sub[["model", "layers", "ratio"]].drop_duplicates().itertuples(index=False),
                    key=lambda t: (t[0], int(t[1]) if not pd.isna(t[1]) else -1, t[2]))
    if len(combos) > _MAX_RDF_ROWS:
        logger.info("RDF figure: showing %d of %d model/layers/ratio rows", _MAX_RDF_ROWS,
                    len(combos))
        combos = combos[:_MAX_RDF_ROWS]
    nrows = max(len(combos), 1)
    fig, axes = plt.subplots(nrows, len(pair_names), figsize=(4 * len(pair_names), 2.6 * nrows), squeeze=False)
    if not combos:
        for ax in axes[0]:
            _no_data(ax)
    styles = _method_styles(sorted(sub["method"].unique()), baselines)
    for row, (model, layers, ratio) in zip(axes, combos):
        runs = sub[(sub["model"] == model) & (sub["layers"] == layers) & (sub["ratio"] == ratio)]
        ref_drawn = False
        for rec in runs.sort_values("method").to_dict("records"):
            table = pd.read_csv(rec["rdf_csv"])
            for ax, pair in zip(row, pair_names):
                if not ref_drawn and f"g_{pair}_ref" in table:
                    # the reference MD is the material's reference potential whatever labels the
                    # training data (data.label)
                    ax.plot(table["r_A"], table[f"g_{pair}_ref"], color="k", ls="--", lw=1.2,
                            label=reference)
                st = styles[rec["method"]]
                ax.plot(table["r_A"], table[f"g_{pair}"], color=st["color"], lw=1.0,
                        label=rec["method"])
            ref_drawn = True
        for ax, pair in zip(row, pair_names):
            ax.set_title(f"{model_label(model, runs['family'].iloc[0])} L{layers}, {ratio_label(axis, ratio)}, "
                         f"{labels[pair]}", fontsize=9)
            ax.set_xlabel("r (Å)")
            ax.set_ylabel("g(r)")
        row[0].legend(fontsize=7)
    fig.suptitle(f"Partial RDFs (T = {temp} K)" if temp is not None else "Partial RDFs")
    fig.tight_layout()
    return _save(fig, outputs, "fig7_rdf")


def _fig_sn(res: pd.DataFrame, baselines: set[str], temp, outputs: Mapping[str, str | Path],
            axis: str) -> list[Path]:
    has_sn = np.array([_exists(p) for p in res["sn"]], dtype=bool)
    sub = res[(res["temp_K"] == temp).to_numpy(dtype=bool) & has_sn] if temp is not None \
        else res.iloc[:0]
    panels = sorted(sub[["model", "layers"]].drop_duplicates().itertuples(index=False),
                    key=lambda t: (t[0], int(t[1]) if not pd.isna(t[1]) else -1))
    ratios = sorted(sub["ratio"].dropna().unique(), key=float) or sorted(res["ratio"].dropna().unique(), key=float) \
        or ["(none)"]
    nrows = max(len(panels), 1)
    fig, axes = plt.subplots(nrows, len(ratios), figsize=(4.2 * len(ratios), 2.8 * nrows),
                             squeeze=False, sharey=True)
    if not panels:
        for ax in axes[0]:
            _no_data(ax)
    styles = _method_styles(sorted(sub["method"].unique()), baselines)
    for row, (model, layers) in zip(axes, panels):
        for ax, ratio in zip(row, ratios):
            cell = sub[(sub["model"] == model) & (sub["layers"] == layers) & (sub["ratio"] == ratio)]
            if cell.empty:
                _no_data(ax)
                continue
            seen = set()
            for rec in cell.sort_values(["method", "seed", "cell_seed", "vseed"]).to_dict("records"):
                sn = pd.read_csv(rec["sn"])
                st = styles[rec["method"]]
                label = None if rec["method"] in seen else rec["method"]
                seen.add(rec["method"])
                ax.plot(sn["step"], sn["s_n"], color=st["color"], lw=0.8, alpha=0.8, label=label)
                if rec.get("classification") == "crash" and len(sn):
                    ax.plot(sn["step"].iloc[-1], sn["s_n"].iloc[-1], marker="x", ms=7,
                            color=st["color"])
            ax.set_title(f"{model_label(model, cell['family'].iloc[0])} L{layers}, {ratio_label(axis, ratio)}",
                         fontsize=9)
            ax.set_xlabel("MD step (× marks a crash)")
            ax.set_ylim(-0.05, 1.05)
            ax.legend(fontsize=7)
        row[0].set_ylabel("s_n")
    fig.suptitle(f"Per-snapshot stability s_n (T = {temp} K)" if temp is not None else
                 "Per-snapshot stability s_n")
    fig.tight_layout()
    return _save(fig, outputs, "fig_sn_curves")


def _last_snapshot(path: Any) -> Snapshot | None:
    last = None
    for snap in DumpReader(path):
        last = snap
    return last


def _draw_snapshot(ax, snap: Snapshot, title: str, species: Sequence[str]) -> None:
    """Draw the cell's atoms in the xy plane, one colour per LAMMPS type (named by ``species``)."""
    cell = snap.cell
    pos = snap.positions
    ok = np.all(np.isfinite(pos), axis=1)
    frac = np.linalg.solve(cell.T, pos[ok].T).T
    frac -= np.floor(frac)
    xyz = frac @ cell
    types = snap.types[ok]
    corners = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]], dtype=float)
    outline = corners @ cell[:2, :2]
    ax.plot(outline[:, 0], outline[:, 1], color="0.6", lw=0.8)
    for index, label in enumerate(species):
        colour, size = _TYPE_COLOURS[index % len(_TYPE_COLOURS)], _TYPE_SIZES[index % len(_TYPE_SIZES)]
        m = types == index + 1
        ax.scatter(xyz[m, 0], xyz[m, 1], s=size, c=colour, edgecolors="k", linewidths=0.3,
                   label=label, zorder=2)
    if snap.forces is not None:
        f = snap.forces[ok][:, :2]
        f = np.where(np.isfinite(f), f, 0.0)
        norm = np.linalg.norm(f, axis=1)
        # arrow length ~ log(1 + |F|) so that a crashed frame's huge forces stay on the canvas
        scale = np.where(norm > 0, np.log1p(norm) / np.where(norm > 0, norm, 1.0), 0.0)
        arrows = f * scale[:, None]
        ax.quiver(xyz[:, 0], xyz[:, 1], arrows[:, 0], arrows[:, 1], np.log10(1.0 + norm),
                  angles="xy", scale_units="xy", scale=1.0, width=0.004, cmap="viridis",
                  zorder=3)
    ax.set_aspect("equal")
    ax.set_xlabel("x (Å)")
    ax.set_ylabel("y (Å)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="upper right")


def _fig_snapshots(res: pd.DataFrame, temp, outputs: Mapping[str, str | Path],
                   material: MaterialSettings) -> list[Path]:
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    have = res[np.array([_exists(p) for p in res["dump"]], dtype=bool)]
    if temp is not None:
        have = have[have["temp_K"] == temp]
    picks = (
        ("crashed / failed run", have[have["classification"].isin(["crash", "fail"])]),
        ("stable run", have[have["classification"] == "stable"]),
    )
    for ax, (what, cand) in zip(axes, picks):
        if cand.empty:
            _no_data(ax, f"no {what}")
            continue
        # a crash before a fail (the paper's Fig. 5 shows a crashed run), then the first by key
        cand = cand.assign(_rank=(cand["classification"] != "crash").astype(int))
        rec = cand.sort_values(["_rank", "model", "layers", "method", "ratio", "seed", "cell_seed", "vseed"]).iloc[0]
        snap = _last_snapshot(rec["dump"])
        if snap is None:
            _no_data(ax, f"{what}: empty dump")
            continue
        title = (f"{what}: {model_label(rec['model'], rec['family'])} L{rec['layers']} "
                 f"{rec['method']}, {ratio_label(ratio_axis(material), rec['ratio'])}, step {snap.step}")
        _draw_snapshot(ax, snap, title, material.species)
    fig.suptitle("Last frame with forces (arrow length ∝ log(1 + |F|), colour log10(1 + |F| eV/Å))")
    fig.tight_layout()
    return _save(fig, outputs, "fig5_snapshots")


def _fig_outcomes(res: pd.DataFrame, outputs: Mapping[str, str | Path]) -> list[Path]:
    rows, columns, colours, labels = outcome_grid(res)
    fig, ax = plt.subplots(figsize=(1.6 + 1.7 * len(columns), 0.9 + 0.42 * len(rows)))
    ax.imshow(colours, aspect="auto")
    for i, line in enumerate(labels):
        for j, text in enumerate(line):
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(columns)), columns, fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    ax.set_title("Classification of every run (green stable, orange fail, red crash, grey no result, white not in the grid)",
                 fontsize=9)
    fig.tight_layout()
    return _save(fig, outputs, "fig_outcomes")


def make_figures(
    runs: pd.DataFrame,
    outputs: Mapping[str, str | Path],
    *,
    material: MaterialSettings,
    temp_K: int | None = None,
    manifest: str | Path | None = None,
    pair_reference: str | Path | None = None,
) -> list[Path]:
    """Draw every figure of :data:`FIGURE_NAMES` into its declared files (one per format).

    Parameters
    ----------
    runs
        The run table: key columns (:data:`gnnff_stability.grid.RUN_KEYS`), the
        resolved method columns (``baseline`` tells baselines from stabilised methods) and file
        paths ``metrics``, ``score``, ``rdf_metrics`` (see
        :func:`gnnff_stability.report.collect.collect_results`) plus ``sn`` (sn.csv), ``rdf`` (the RDF
        CSV) and ``dump`` (dump.lammpstrj). Missing columns or files leave panels empty.
    outputs
        The file of each figure and format, by output name ``<name>_<ext>`` (``fig3_corr_vs_stability_png``;
        :func:`gnnff_stability.paths.figure_files`, a rule's ``output``). Parent directories are created.
    material
        The species (RDF panels per pair, snapshot colours per type, pair-force panels), the OOD axis
        of the ratio labels and the reference potential's name in legends.
    temp_K
        Set-point temperature to show; default the lowest one in ``runs`` (the paper: 1200 K).
    manifest
        If given, a text file listing the written figures, one per line (a Snakemake target).
    pair_reference
        The reference potential's pair-force CSV (:mod:`gnnff_stability.data.pair_reference`) for
        ``fig_pair_interaction``, whose per-model curves come from the ``pair`` column.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    runs = pd.DataFrame(runs).reset_index(drop=True)
    res = collect_results(runs, material=material)
    axis = ratio_axis(material)
    for col in ("sn", "dump"):
        res[col] = runs[col] if col in runs else None
    res["rdf_csv"] = (
        [p if isinstance(p, str) and p.endswith(".csv") else None for p in runs["rdf"]]
        if "rdf" in runs else None
    )
    baselines = set(res.loc[res["baseline"], "method"])
    temps = sorted(int(t) for t in res["temp_K"].dropna().unique())
    temp = int(temp_K) if temp_K is not None else (temps[0] if temps else None)
    missing = [f"{n}_{e}" for n in FIGURE_NAMES for e in FIGURE_FORMATS if f"{n}_{e}" not in outputs]
    if missing:
        raise ValueError(f"no output file given for figure(s) {missing}; expected one per name of "
                         f"{list(FIGURE_NAMES)} and format of {list(FIGURE_FORMATS)}")
    out = outputs
    written: list[Path] = []
    written += _save(fig_corr_vs_stability(res, baselines, temp, axis=axis), out, "fig3_corr_vs_stability")
    written += _fig_rdf(res, baselines, temp, out, material)
    written += _fig_sn(res, baselines, temp, out, axis)
    written += _fig_snapshots(res, temp, out, material)
    written += _fig_outcomes(res, out)
    res["pair"] = runs["pair"] if "pair" in runs else None
    written += fig_pair_interaction(res, pair_reference, out, _save, material=material)
    if manifest is not None:
        Path(manifest).parent.mkdir(parents=True, exist_ok=True)
        Path(manifest).write_text("".join(f"{p}\n" for p in written))
    logger.info("wrote %d figure files: %s", len(written), ", ".join(str(p) for p in written))
    return written
