"""Snakemake entry point of ``label_harvest``: the reference labels of one round's selected frames."""

import json
from pathlib import Path

from gnnff_stability.data.active import label_harvest, read_frames
from gnnff_stability.data.reference import write_frames
from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import CombSettings, MaterialSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
frames, summary = label_harvest(
    read_frames(snakemake.input.selected),  # noqa: F821
    snakemake.params.label,  # noqa: F821
    CombSettings.from_config(snakemake.params.comb),  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    start_cells=snakemake.params.start_cells,  # noqa: F821
    threads=snakemake.threads,  # noqa: F821
)
write_frames(frames, snakemake.output.harvest)  # noqa: F821
Path(snakemake.output.label).write_text(json.dumps(summary, indent=2) + "\n")  # noqa: F821
