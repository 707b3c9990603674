rule run_md:
    input:
        model=deployed_model,
        cell=paths.STRUCTURE_FILES["data"],
    output:
        **paths.MD_FILES,
    params:
        temp_K=temp_of,
        seed=vseed_of,
        family=family_of,
        md=md_block,
    log:
        LOG(f"{paths.MD}/run_md.log"),
    benchmark:
        BENCH(f"{paths.MD}/run_md.tsv")
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/run_md.py"


rule run_reference_md:
    input:
        cell=paths.STRUCTURE_FILES["data"],
    output:
        **paths.REFMD_FILES,
    params:
        temp_K=temp_of,
        seed=0,
        refmd=config["refmd"],
        over_coordination=config["data"]["comb"]["over_coordination"],
    log:
        LOG(f"{paths.REFMD}/run_reference_md.log"),
    benchmark:
        BENCH(f"{paths.REFMD}/run_reference_md.tsv")
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/run_reference_md.py"
