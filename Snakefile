# gnnff-stability: GNN force fields on HfO2, with and without feature decorrelation, scored in LAMMPS MD.
# The grid in the config is the only list of runs; see README.md.

from snakemake.utils import min_version

min_version("9.0")


# The embedded default; a campaign given with --configfile replaces it instead of being merged into it.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/structures.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/active.smk"
include: "workflow/rules/md.smk"
include: "workflow/rules/analyse.smk"
include: "workflow/rules/metrics.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    score_run,
    compute_rdf,
    nve_drift,
    ramp_failure,
    make_tables,
    make_figures,
    paper_figures,
    study_report,
    pair_reference,
    select_frames,
    merge_training,
    finish_active,


rule all:
    input:
        all_targets(),
