rule make_reference_data:
    output:
        **paths.DATA_FILES,
    params:
        data=config["data"],
    log:
        LOG(f"{paths.DATA}/make_reference_data.log"),
    benchmark:
        BENCH(f"{paths.DATA}/make_reference_data.tsv")
    threads: 2
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/make_reference_data.py"
