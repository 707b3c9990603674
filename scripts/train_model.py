"""Snakemake entry point of ``train_model``: nequip-train, packaging and metrics of one model."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import MaterialSettings, ModelPreset, TrainingSettings
from gnnff_stability.train.run import train_model

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
run = snakemake.params.run  # noqa: F821
train_model(
    run,
    ModelPreset.from_config(run["model"], snakemake.params.model),  # noqa: F821
    TrainingSettings.from_config(snakemake.params.training),  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    files=dict(snakemake.input.items()),  # noqa: F821
    run_dir=snakemake.params.run_dir,  # noqa: F821
    outputs=dict(snakemake.output.items()),  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
