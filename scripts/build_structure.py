"""Snakemake entry point: build one MD start cell (LAMMPS data + extended XYZ).

output: data, xyz; params: ratio (float O-per-Hf), structures ({supercell, seed}); log[0].
"""

from gnnff_stability.logs import setup_script_logging
from gnnff_stability.structures import build_cell

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
build_cell(
    float(snakemake.params.ratio),  # noqa: F821
    snakemake.params.structures["supercell"],  # noqa: F821
    int(snakemake.params.structures["seed"]),  # noqa: F821
    snakemake.output.data,  # noqa: F821
    snakemake.output.xyz,  # noqa: F821
)
