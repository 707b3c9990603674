rule run_md:
    input:
        model=deployed_model,
        cell=paths.STRUCTURE_FILES["data"],
    output:
        dump=paths.MD_FILES["dump"],
        log=paths.MD_FILES["log"],
        thermo=paths.MD_FILES["thermo"],
        status=paths.MD_FILES["status"],
    params:
        temp_K=temp_of,
        seed=vseed_of,
        family=family_of,
        md=md_block,
        material=MATERIAL,
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
        dump=paths.REFMD_FILES["dump"],
        thermo=paths.REFMD_FILES["thermo"],
    params:
        temp_K=temp_of,
        seed=0,
        refmd=config["refmd"],
        material=MATERIAL,
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
