"""Snakemake entry point of ``make_reference_data``: train/valid/test extended XYZ and meta.json.

The ``__main__`` guard matters: COMB and pair-style trajectories run in spawned worker processes, which
import this file again under another name.
"""

from gnnff_stability.data.reference import make_reference_data
from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import DataSettings, MaterialSettings

if __name__ == "__main__":
    setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
    make_reference_data(
        DataSettings.from_config(snakemake.params.data),  # noqa: F821
        MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
        snakemake.output.train,  # noqa: F821
        snakemake.output.valid,  # noqa: F821
        snakemake.output.test,  # noqa: F821
        snakemake.output.meta,  # noqa: F821
        threads=snakemake.threads,  # noqa: F821
    )
