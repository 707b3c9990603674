# Validation, the run table, wildcard constraints and input functions. Every path comes from
# gnnff_stability.paths and every run from gnnff_stability.grid.expand_grid.

from gnnff_stability import paths
from gnnff_stability.config import validate_config
from gnnff_stability.figures import FIGURE_NAMES
from gnnff_stability.grid import expand_grid, training_runs, with_paths

config = validate_config(config)
RUNS = with_paths(expand_grid(config))
LOG = paths.log_path
REPORT_DIR = f"{workflow.basedir}/workflow/report"  # captions, absolute: report() is called from several files
BENCH = paths.bench_path


wildcard_constraints:
    model="|".join(sorted(config["models"])),
    method="|".join(sorted(config["methods"], key=len, reverse=True)).replace("+", r"\+"),
    layers=r"\d+",
    seed=r"\d+",
    ratio=r"\d\.\d\d",
    temp=r"\d+",
    vseed=r"\d+",


def run_records():
    """The run table as records, for the aggregation rules (keys and file paths)."""
    return RUNS.to_dict("records")


def model_family(wildcards):
    return config["models"][wildcards.model]["family"]


def deployed_model(wildcards):
    """The model file the MD engine loads: the nequip package, or its compiled form."""
    train_dir = paths.TRAIN.format(**wildcards)
    if config["md"]["engine"] == "hpc" or config["md"]["model_format"] == "compiled":
        return f"{train_dir}/model.{config['md']['engine']}.nequip.pt2"
    return f"{train_dir}/model.nequip.zip"


def compile_target(wildcards):
    if wildcards.engine == "embedded":
        return "ase"
    family = model_family(wildcards)
    style = config["md"]["hpc"]["pair_style"]
    return f"pair_{family if style == 'auto' else style}"


def rdf_enabled():
    return config["refmd"]["enabled"]


def table_outputs():
    """The table files, marked for `snakemake --report` (CSV shown as a table, markdown as text)."""
    return {
        f"{name}_{ext}": report(
            f"{paths.TABLES}/{name}.{ext}",
            caption=f"{REPORT_DIR}/tables.rst",
            category="Tables",
            labels={"table": name, "format": ext},
        )
        for name in paths.TABLE_NAMES
        for ext in ("csv", "md")
    }


def figure_outputs():
    """The figure files (PNG and PDF), each with its caption under workflow/report/."""
    return {
        f"{name}_{ext}": report(
            f"{paths.FIGURES}/{name}.{ext}",
            caption=f"{REPORT_DIR}/{name}.rst",
            category="Figures",
            labels={"figure": name, "format": ext},
        )
        for name in FIGURE_NAMES
        for ext in ("png", "pdf")
    }


def aggregation_inputs(wildcards):
    """Every per-run result the tables are built from."""
    inputs = {
        "metrics": sorted(set(RUNS["metrics"])),
        "scores": list(RUNS["score"]),
    }
    if rdf_enabled():
        inputs["rdf"] = list(RUNS["rdf_metrics"])
    return inputs


def all_targets():
    return [*table_outputs().values(), *figure_outputs().values()]
