"""Snakemake entry point of ``build_structure``: one MD start cell (LAMMPS data + extended XYZ)."""

from gnnff_stability.data.structures import build_cell
from gnnff_stability.logs import setup_script_logging
from gnnff_stability.settings import CombSettings, MaterialSettings, StructureSettings

setup_script_logging(snakemake.log[0])  # noqa: F821 (snakemake is injected by the script directive)
build_cell(
    snakemake.params.ratio,  # noqa: F821
    snakemake.params.cell_seed,  # noqa: F821
    StructureSettings.from_config(snakemake.params.structures),  # noqa: F821
    MaterialSettings.from_config(snakemake.params.material),  # noqa: F821
    snakemake.output.data,  # noqa: F821
    snakemake.output.xyz,  # noqa: F821
    comb=CombSettings.from_config(snakemake.params.comb),  # noqa: F821
)
