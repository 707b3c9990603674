"""Snakemake entry point: train one model with nequip-train, package it, write its metrics."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.training import train_model

setup_script_logging(snakemake.log[0])  # noqa: F821
train_model(
    model=snakemake.params.model,  # noqa: F821
    layers=int(snakemake.params.layers),  # noqa: F821
    seed=int(snakemake.params.seed),  # noqa: F821
    model_settings=snakemake.params.model_settings,  # noqa: F821
    method_settings=snakemake.params.method_settings,  # noqa: F821
    training_settings=snakemake.params.training,  # noqa: F821
    train=snakemake.input.train,  # noqa: F821
    valid=snakemake.input.valid,  # noqa: F821
    test=snakemake.input.test,  # noqa: F821
    run_dir=snakemake.params.run_dir,  # noqa: F821
    model_out=snakemake.output.model,  # noqa: F821
    metrics_out=snakemake.output.metrics,  # noqa: F821
    epoch_csv_out=snakemake.output.epochs,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
    method=getattr(snakemake.params, "method", None),  # noqa: F821
)
