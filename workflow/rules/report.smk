rule make_tables:
    input:
        unpack(aggregation_inputs),
    output:
        **table_outputs(),
    params:
        runs=run_records(),
        methods=config["methods"],
    log:
        LOG(f"{paths.TABLES}/make_tables.log"),
    script:
        "../../scripts/make_tables.py"


rule make_figures:
    input:
        unpack(aggregation_inputs),
        tables=list(table_outputs().values()),
    output:
        done=f"{paths.FIGURES}/figures.done",
    params:
        runs=run_records(),
        methods=config["methods"],
    log:
        LOG(f"{paths.FIGURES}/make_figures.log"),
    script:
        "../../scripts/make_figures.py"


rule paper_figures:
    # Regenerates every table and figure from whatever results exist, without training or MD.
    params:
        runs=run_records(),
        methods=config["methods"],
    log:
        LOG(f"{paths.FIGURES}/paper_figures.log"),
    script:
        "../../scripts/regenerate_paper_outputs.py"
