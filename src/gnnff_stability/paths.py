"""Result paths of the campaign, written once.

Every output of a campaign lies under its own results root, ``results/<campaign>/`` (the config's
``campaign`` key), so that campaigns live side by side. Every path template here starts at that root,
``{campaign}`` included, and uses the workflow's wildcards (``model``, ``layers``, ``method``, ``seed``,
``ratio``, ``cell``, ``temp``, ``vseed``). :func:`bind` fills in one campaign: the Snakemake rules declare
their outputs with its templates, and the aggregation steps fill them from the run table built by
:func:`gnnff_stability.grid.expand_grid`, so no path is typed twice and no script recovers values by
parsing a path.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

__all__ = [
    "CHECKPOINT_FILES",
    "ACTIVE",
    "ACTIVE_FILES",
    "ACTIVE_MD",
    "ACTIVE_MD_FILES",
    "ANALYSIS",
    "COMPILED_MODEL",
    "DATA",
    "DATA_FILES",
    "FIGURES",
    "FIGURE_FORMATS",
    "FIGURE_NAMES",
    "MD",
    "MD_FILES",
    "METRICS",
    "MODEL_PACKAGE",
    "NVE_FILES",
    "NVE_MD",
    "NVE_RESULT",
    "PAPER_FIGURES",
    "REFMD",
    "REFMD_FILES",
    "RUN_FILES",
    "SCORE_FILES",
    "RAMP_FILES",
    "RAMP_MD",
    "RAMP_RESULT",
    "RDF_FILES",
    "STRUCTURE",
    "STRUCTURE_FILES",
    "STUDY",
    "STUDY_FILES",
    "TABLES",
    "TABLE_FORMATS",
    "TABLE_NAMES",
    "TRAIN",
    "TRAIN_FILES",
    "TRAIN_RUN_DIR",
    "PREFIT",
    "PREFIT_DIR",
    "PAIR_INTERACTION",
    "PAIR_REFERENCE",
    "RESULTS",
    "ROOT",
    "bench_path",
    "bind",
    "campaign_root",
    "figure_file",
    "figure_files",
    "fill",
    "log_path",
    "ratio_token",
    "table_file",
    "table_files",
]

#: The directory of every campaign's results root.
RESULTS = "results"
#: One campaign's results root.
ROOT = f"{RESULTS}/{{campaign}}"
DATA = f"{ROOT}/data/reference"
STRUCTURE = f"{ROOT}/structures/ratio{{ratio}}/c{{cell}}"
TRAIN = f"{ROOT}/train/{{model}}/L{{layers}}/{{method}}/seed{{seed}}"
_RUN = "{model}/L{layers}/{method}/seed{seed}/ratio{ratio}/c{cell}/T{temp}K/v{vseed}"
MD = f"{ROOT}/md/{_RUN}"
ANALYSIS = f"{ROOT}/analysis/{_RUN}"
REFMD = f"{ROOT}/refmd/ratio{{ratio}}/c{{cell}}/T{{temp}}K"
#: Stability metrics beyond the paper, one run per trained model (``metrics`` block).
METRICS = f"{ROOT}/metrics"
NVE_MD = f"{METRICS}/nve/{{model}}/L{{layers}}/{{method}}/seed{{seed}}"
RAMP_MD = f"{METRICS}/ramp/{{model}}/L{{layers}}/{{method}}/seed{{seed}}"
TABLES = f"{ROOT}/tables"
FIGURES = f"{ROOT}/figures"
#: ``snakemake paper_figures``: tables and figures regenerated from the results that exist.
PAPER_FIGURES = f"{ROOT}/paper_figures"
#: The study report: every method against the baseline, paired over training seeds
#: (:func:`gnnff_stability.report.study.write_study`).
STUDY = f"{ROOT}/study"
STUDY_FILES = {"csv": f"{STUDY}/study.csv", "md": f"{STUDY}/study.md", "km": f"{STUDY}/km.png"}
LOGS = f"{ROOT}/logs"
BENCH = f"{ROOT}/benchmarks"

# Leaf files of each stage (rule output name -> path template).
DATA_FILES = {
    "train": f"{DATA}/train.xyz",
    "valid": f"{DATA}/valid.xyz",
    "test": f"{DATA}/test.xyz",
    "meta": f"{DATA}/meta.json",
}
STRUCTURE_FILES = {"data": f"{STRUCTURE}/cell.data", "xyz": f"{STRUCTURE}/cell.xyz"}
MODEL_PACKAGE = f"{TRAIN}/model.nequip.zip"
TRAIN_FILES = {
    "model": MODEL_PACKAGE,
    "metrics": f"{TRAIN}/metrics.json",
    "epochs": f"{TRAIN}/metrics_epoch.csv",
}
TRAIN_RUN_DIR = f"{TRAIN}/run"
#: ``training.checkpoint`` -> the checkpoint file of a run directory that is packaged: the epoch with the lowest
#: validation loss, or the last epoch (the template's unmonitored checkpoint with ``save_last``).
CHECKPOINT_FILES = {"best": "best.ckpt", "last": "last.ckpt"}
#: Phase 1 of a decomposition method: its two- and three-body terms fitted to the reference data, shared
#: by every model family the method trains (one fit per method and training seed).
PREFIT_DIR = f"{ROOT}/train/prefit/{{method}}/seed{{seed}}"
PREFIT = f"{PREFIT_DIR}/body_terms.pt"
#: The learned pair interaction F_ij(r) of a trained model, binned over the test frames.
PAIR_INTERACTION = f"{TRAIN}/pair_interaction.csv"
#: The reference potential's pair force F(r) of an isolated pair, beside the learned ones.
PAIR_REFERENCE = f"{DATA}/pair_reference.csv"
COMPILED_MODEL = f"{TRAIN}/model.{{engine}}.nequip.pt2"
#: One round of an active method (``methods.<name>.active``), under the active method's training directory.
ACTIVE = f"{TRAIN}/active/round{{round}}"
#: A harvest MD run of a round: the round's model on a harvest cell and velocity seed (never the grid's).
ACTIVE_MD = f"{ACTIVE}/md/ratio{{ratio}}/c{{cell}}/T{{temp}}K/v{{vseed}}"
#: The files of a round: the frames selected from its harvest runs (``selected.xyz``, unlabelled) and what the
#: selection found (``selection.json``); the labelled frames with their provenance (``harvest.xyz``) and the
#: labelling's record (``label.json``); the merged training split (``train.xyz``); the retrained model, its
#: nequip-train directory and the round's ``metrics.json`` (label budget and wall time included).
ACTIVE_FILES = {
    "selected": f"{ACTIVE}/selected.xyz",
    "selection": f"{ACTIVE}/selection.json",
    "harvest": f"{ACTIVE}/harvest.xyz",
    "label": f"{ACTIVE}/label.json",
    "train": f"{ACTIVE}/train.xyz",
    "model": f"{ACTIVE}/model.nequip.zip",
    "metrics": f"{ACTIVE}/metrics.json",
    "epochs": f"{ACTIVE}/metrics_epoch.csv",
    "run_dir": f"{ACTIVE}/run",
}
MD_FILES = {
    "dump": f"{MD}/dump.lammpstrj",
    "log": f"{MD}/log.lammps",
    "thermo": f"{MD}/thermo.csv",
    "status": f"{MD}/status.json",
}
SCORE_FILES = {"score": f"{ANALYSIS}/stability.json", "sn": f"{ANALYSIS}/sn.csv"}
RDF_FILES = {"rdf": f"{ANALYSIS}/rdf.csv", "metrics": f"{ANALYSIS}/rdf_metrics.json"}
REFMD_FILES = {"dump": f"{REFMD}/dump.lammpstrj", "thermo": f"{REFMD}/thermo.csv"}
ACTIVE_MD_FILES = {name: path.replace(MD, ACTIVE_MD) for name, path in MD_FILES.items()}
NVE_FILES = {name: path.replace(MD, NVE_MD) for name, path in MD_FILES.items()}
RAMP_FILES = {name: path.replace(MD, RAMP_MD) for name, path in MD_FILES.items()}
NVE_RESULT = f"{NVE_MD}/nve_drift.json"
RAMP_RESULT = f"{RAMP_MD}/ramp_failure.json"

#: Per-run files as columns of the run table (:func:`gnnff_stability.grid.with_paths`).
RUN_FILES = {
    "metrics": TRAIN_FILES["metrics"],
    "epochs": TRAIN_FILES["epochs"],
    "status": MD_FILES["status"],
    "thermo": MD_FILES["thermo"],
    "dump": MD_FILES["dump"],
    "score": SCORE_FILES["score"],
    "sn": SCORE_FILES["sn"],
    "rdf": RDF_FILES["rdf"],
    "rdf_metrics": RDF_FILES["metrics"],
    "nve": NVE_RESULT,
    "ramp": RAMP_RESULT,
    "pair": PAIR_INTERACTION,
}

TABLE_NAMES = (
    "table1",
    "table2",
    "table3",
    "table4",
    "tableA1",
    "tableA2",
    "tableA3",
    "tableA4",
    "tableS1",
)
TABLE_FORMATS = ("csv", "md")
#: The figures of a campaign (drawn by :func:`gnnff_stability.report.figures.make_figures`).
FIGURE_NAMES = (
    "fig3_corr_vs_stability",
    "fig7_rdf",
    "fig_sn_curves",
    "fig5_snapshots",
    "fig_outcomes",
    "fig_pair_interaction",
)
FIGURE_FORMATS = ("png", "pdf")


def table_file(name: str, ext: str, root: str = TABLES) -> str:
    """Path of one table file (``ext`` in :data:`TABLE_FORMATS`) under ``root``."""
    return f"{root}/{name}.{ext}"


def figure_file(name: str, ext: str, root: str = FIGURES) -> str:
    """Path of one figure file (``ext`` in :data:`FIGURE_FORMATS`) under ``root``."""
    return f"{root}/{name}.{ext}"


def table_files(root: str = TABLES) -> dict[str, str]:
    """Every table file under ``root``, by output name ``<name>_<ext>`` (the rules' output names)."""
    return {f"{name}_{ext}": table_file(name, ext, root) for name in TABLE_NAMES for ext in TABLE_FORMATS}


def figure_files(root: str = FIGURES) -> dict[str, str]:
    """Every figure file under ``root``, by output name ``<name>_<ext>`` (the rules' output names)."""
    return {f"{name}_{ext}": figure_file(name, ext, root) for name in FIGURE_NAMES for ext in FIGURE_FORMATS}


def ratio_token(ratio: float) -> str:
    """Path token of a ratio along ``material.ood``: two decimals, ``1.1 -> "1.10"``."""
    return f"{float(ratio):.2f}"


def fill(template: str, run: Mapping[str, Any]) -> str:
    """Fill a path template from one row of the run table.

    The run table stores the temperature as ``temp_K``, the cell seed as ``cell_seed`` and the ratio as a
    float; the path wildcards are ``temp``, ``cell`` and the two-decimal ``ratio`` token.
    """
    values = dict(run)
    if "temp_K" in values:
        values.setdefault("temp", int(values["temp_K"]))
    if "cell_seed" in values:
        values.setdefault("cell", int(values["cell_seed"]))
    if "ratio" in values:
        values["ratio"] = ratio_token(values["ratio"])
    return template.format(**values)


_ROOT_PREFIX = re.compile(rf"^({re.escape(RESULTS)}/[^/]+/)")


def log_path(template: str) -> str:
    """The log file that mirrors a result path (of one campaign, or a template): ``<root>/logs/...``."""
    return _ROOT_PREFIX.sub(r"\1logs/", template, count=1)


def bench_path(template: str) -> str:
    """The benchmark file that mirrors a result path: ``<root>/benchmarks/...``."""
    return _ROOT_PREFIX.sub(r"\1benchmarks/", template, count=1)


def campaign_root(campaign: str) -> str:
    """The results root of one campaign: ``results/<campaign>``."""
    return ROOT.format(campaign=campaign)


def _bound(value: Any, campaign: str) -> Any:
    if isinstance(value, str):
        return value.replace("{campaign}", campaign)
    if isinstance(value, dict):
        return {key: _bound(item, campaign) for key, item in value.items()}
    return value


def bind(campaign: str) -> SimpleNamespace:
    """Every template and helper of this module for one campaign: ``{campaign}`` filled in.

    The result has this module's names (``bind("demo").TRAIN_FILES["model"]`` is
    ``results/demo/train/{model}/L{layers}/{method}/seed{seed}/model.nequip.zip``); ``table_file`` and
    ``figure_file`` default to the campaign's ``TABLES`` and ``FIGURES``. The workflow binds its campaign
    once (``workflow/rules/common.smk``).
    """
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", str(campaign)):
        raise ValueError(f"campaign {campaign!r}: allowed are letters, digits, '_', '.', '-' (a directory name)")
    names = {name: _bound(value, campaign) for name, value in globals().items()
             if name.isupper() and not name.startswith("_")}
    return SimpleNamespace(
        campaign=campaign,
        **names,
        table_file=functools.partial(table_file, root=names["TABLES"]),
        figure_file=functools.partial(figure_file, root=names["FIGURES"]),
        table_files=functools.partial(table_files, root=names["TABLES"]),
        figure_files=functools.partial(figure_files, root=names["FIGURES"]),
        fill=fill,
        ratio_token=ratio_token,
        log_path=log_path,
        bench_path=bench_path,
    )
