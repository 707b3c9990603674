"""Snakemake entry point of ``merge_training``: a round's training split, the previous one plus its harvest."""

from gnnff_stability.data.active import merge_training, read_frames
from gnnff_stability.data.reference import write_frames
from gnnff_stability.logs import setup_script_logging

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
write_frames(
    merge_training(read_frames(snakemake.input.train), read_frames(snakemake.input.harvest)),  # noqa: F821
    snakemake.output.train,  # noqa: F821
)
