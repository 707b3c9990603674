rule make_reference_data:
    output:
        train=f"{paths.DATA}/train.xyz",
        valid=f"{paths.DATA}/valid.xyz",
        test=f"{paths.DATA}/test.xyz",
        meta=f"{paths.DATA}/meta.json",
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
