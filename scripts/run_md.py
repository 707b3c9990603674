"""Snakemake entry point of the ``md`` rule: one MD run of a trained model on one start cell.

Inputs: ``model`` (model.nequip.zip), ``cell`` (LAMMPS data file). Outputs: ``dump``, ``log``,
``thermo``, ``status``. Params: ``temp_K``, ``seed`` (velocity seed), ``md`` (the config's md block),
optionally ``family`` (model family, for the HPC engine's ``pair_style: auto``).
"""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.md import run_md

setup_script_logging(snakemake.log[0])  # noqa: F821 - injected by Snakemake
run_md(
    snakemake.input.model,  # noqa: F821
    snakemake.input.cell,  # noqa: F821
    float(snakemake.params.temp_K),  # noqa: F821
    int(snakemake.params.seed),  # noqa: F821
    snakemake.params.md,  # noqa: F821
    dump=snakemake.output.dump,  # noqa: F821
    log=snakemake.output.log,  # noqa: F821
    thermo=snakemake.output.thermo,  # noqa: F821
    status=snakemake.output.status,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    family=getattr(snakemake.params, "family", None),  # noqa: F821
)
