"""Snakemake entry point of ``retrain_model``: one active-learning round's retraining and its metrics."""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import MaterialSettings, ModelPreset, RetrainSettings, TrainingSettings
from gnnff_stability.train.active import retrain_round

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
run = snakemake.params.run  # noqa: F821
retrain_round(
    run,
    ModelPreset.from_config(run["model"], snakemake.params.model),  # noqa: F821
    TrainingSettings.from_config(snakemake.params.training),  # noqa: F821
    RetrainSettings.from_config(snakemake.params.retrain),  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    int(snakemake.wildcards.round),  # noqa: F821
    files={k: v for k, v in snakemake.input.items() if k != "start_model"},  # noqa: F821
    run_dir=snakemake.params.run_dir,  # noqa: F821
    outputs=dict(snakemake.output.items()),  # noqa: F821
    init_checkpoint=snakemake.params.init_checkpoint,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
