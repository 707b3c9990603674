"""Result paths of the campaign, written once.

Every path template here uses the workflow's wildcards (``model``, ``layers``, ``method``, ``seed``,
``ratio``, ``cell``, ``temp``, ``vseed``). The Snakemake rules declare their outputs with these templates, and the
aggregation steps fill them from the run table built by :func:`gnnff_stability.grid.expand_grid`, so no
path is typed twice and no script recovers values by parsing a path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ANALYSIS",
    "COMPILED_MODEL",
    "DATA",
    "DATA_FILES",
    "FIGURES",
    "FIGURE_FORMATS",
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
    "bench_path",
    "figure_file",
    "fill",
    "log_path",
    "ratio_token",
    "table_file",
]

RESULTS = "results"
DATA = f"{RESULTS}/data/reference"
STRUCTURE = f"{RESULTS}/structures/HfO{{ratio}}/c{{cell}}"
TRAIN = f"{RESULTS}/train/{{model}}/L{{layers}}/{{method}}/seed{{seed}}"
_RUN = "{model}/L{layers}/{method}/seed{seed}/HfO{ratio}/c{cell}/T{temp}K/v{vseed}"
MD = f"{RESULTS}/md/{_RUN}"
ANALYSIS = f"{RESULTS}/analysis/{_RUN}"
REFMD = f"{RESULTS}/refmd/HfO{{ratio}}/c{{cell}}/T{{temp}}K"
#: Stability metrics beyond the paper, one run per trained model (``metrics`` block).
METRICS = f"{RESULTS}/metrics"
NVE_MD = f"{METRICS}/nve/{{model}}/L{{layers}}/{{method}}/seed{{seed}}"
RAMP_MD = f"{METRICS}/ramp/{{model}}/L{{layers}}/{{method}}/seed{{seed}}"
TABLES = f"{RESULTS}/tables"
FIGURES = f"{RESULTS}/figures"
#: ``snakemake paper_figures``: tables and figures regenerated from the results that exist.
PAPER_FIGURES = f"{RESULTS}/paper_figures"
LOGS = f"{RESULTS}/logs"
BENCH = f"{RESULTS}/benchmarks"

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
#: Phase 1 of a decomposition method: its two- and three-body terms fitted to the reference data, shared
#: by every model family the method trains (one fit per method and training seed).
PREFIT_DIR = f"{RESULTS}/train/prefit/{{method}}/seed{{seed}}"
PREFIT = f"{PREFIT_DIR}/body_terms.pt"
#: The learned pair interaction F_ij(r) of a trained model, binned over the test frames.
PAIR_INTERACTION = f"{TRAIN}/pair_interaction.csv"
#: The reference potential's pair force F(r) of an isolated pair, beside the learned ones.
PAIR_REFERENCE = f"{DATA}/pair_reference.csv"
COMPILED_MODEL = f"{TRAIN}/model.{{engine}}.nequip.pt2"
MD_FILES = {
    "dump": f"{MD}/dump.lammpstrj",
    "log": f"{MD}/log.lammps",
    "thermo": f"{MD}/thermo.csv",
    "status": f"{MD}/status.json",
}
SCORE_FILES = {"score": f"{ANALYSIS}/stability.json", "sn": f"{ANALYSIS}/sn.csv"}
RDF_FILES = {"rdf": f"{ANALYSIS}/rdf.csv", "metrics": f"{ANALYSIS}/rdf_metrics.json"}
REFMD_FILES = {"dump": f"{REFMD}/dump.lammpstrj", "thermo": f"{REFMD}/thermo.csv"}
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
FIGURE_FORMATS = ("png", "pdf")


def table_file(name: str, ext: str, root: str = TABLES) -> str:
    """Path of one table file (``ext`` in :data:`TABLE_FORMATS`) under ``root``."""
    return f"{root}/{name}.{ext}"


def figure_file(name: str, ext: str, root: str = FIGURES) -> str:
    """Path of one figure file (``ext`` in :data:`FIGURE_FORMATS`) under ``root``."""
    return f"{root}/{name}.{ext}"


def ratio_token(o_per_hf: float) -> str:
    """Path token of an O-per-Hf ratio: two decimals, ``1.1 -> "1.10"``."""
    return f"{float(o_per_hf):.2f}"


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


def log_path(template: str) -> str:
    """The log file that mirrors a result directory template."""
    return template.replace(f"{RESULTS}/", f"{LOGS}/", 1)


def bench_path(template: str) -> str:
    """The benchmark file that mirrors a result directory template."""
    return template.replace(f"{RESULTS}/", f"{BENCH}/", 1)
