rule make_tables:
    input:
        **result_files(),
        **overhead_benchmark_input(),
    output:
        **table_outputs(),
    params:
        runs=run_records(),
        campaign=config["campaign"],
        material=MATERIAL,
    log:
        LOG(f"{paths.TABLES}/make_tables.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/make_tables.py"


rule make_figures:
    input:
        **result_files(),
    output:
        **figure_outputs(),
    params:
        runs=run_records(),
        campaign=config["campaign"],
        material=MATERIAL,
        figures=config["figures"],
    log:
        LOG(f"{paths.FIGURES}/make_figures.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/make_figures.py"


rule paper_figures:
    # Every table and figure again from the results that exist when the workflow is planned, without
    # training or MD: missing runs become missing cells and empty panels. Its inputs are only existing
    # files, and it writes under results/<campaign>/paper_figures/, never over make_tables / make_figures.
    # Run as `snakemake paper_figures` (or `make figures`).
    input:
        **result_files(existing_only=True),
        **overhead_benchmark_input(),
    output:
        **table_outputs(f"{paths.PAPER_FIGURES}/tables"),
        **figure_outputs(f"{paths.PAPER_FIGURES}/figures"),
    params:
        runs=run_records(),
        campaign=config["campaign"],
        material=MATERIAL,
        figures=config["figures"],
    log:
        LOG(f"{paths.PAPER_FIGURES}/paper_figures.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/regenerate_paper_outputs.py"


rule study_report:
    # Every method of the grid against its baseline, paired over training seeds: time to failure
    # (Kaplan-Meier, seed-stratified Cox), unstable share, S_index and the ramp's failure temperature, with
    # intervals and minimum detectable effects (gnnff_stability.report.study).
    input:
        table_a4=paths.table_file("tableA4", "csv"),
        table_s1=paths.table_file("tableS1", "csv"),
    output:
        **paths.STUDY_FILES,
    params:
        arms=STUDY_ARMS,
        md=config["md"],
        material=MATERIAL,
    log:
        LOG(f"{paths.STUDY}/study_report.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/study_report.py"
