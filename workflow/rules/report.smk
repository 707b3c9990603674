rule make_tables:
    input:
        unpack(aggregation_inputs),
    output:
        **table_outputs(),
    params:
        runs=run_records(),
        methods=config["methods"],
        models=config["models"],
    log:
        LOG(f"{paths.TABLES}/make_tables.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/make_tables.py"


rule make_figures:
    input:
        unpack(aggregation_inputs),
        sn=list(RUNS["sn"]),
    output:
        **figure_outputs(),
    params:
        runs=run_records(),
        methods=config["methods"],
    log:
        LOG(f"{paths.FIGURES}/make_figures.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/make_figures.py"


rule paper_figures:
    # Every table and figure again from whatever results exist now, without training or MD: missing
    # runs become missing cells and empty panels. Run as `snakemake paper_figures`.
    params:
        runs=run_records(),
        methods=config["methods"],
        models=config["models"],
        tables=paths.TABLES,
        figures=paths.FIGURES,
    log:
        LOG(f"{paths.FIGURES}/paper_figures.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/regenerate_paper_outputs.py"
