# Stability metrics beyond the paper (`metrics` block), one run each per trained model on the
# in-distribution cell: the NVE energy drift (LAMBench / MLIPAudit) and the temperature ramp (MLIP Arena).
# Both MD runs use the campaign's engine, protocol and crash / fail rules with another thermostat.


rule run_nve_md:
    input:
        model=deployed_model,
        cell=ID_CELL,
    output:
        dump=paths.NVE_FILES["dump"],
        log=paths.NVE_FILES["log"],
        thermo=paths.NVE_FILES["thermo"],
        status=paths.NVE_FILES["status"],
    params:
        md=md_block,
        nve=config["metrics"]["nve"],
        material=MATERIAL,
        family=family_of,
    log:
        LOG(f"{paths.NVE_MD}/run_nve_md.log"),
    benchmark:
        BENCH(f"{paths.NVE_MD}/run_nve_md.tsv")
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/run_nve_md.py"


rule nve_drift:
    input:
        thermo=paths.NVE_FILES["thermo"],
        status=paths.NVE_FILES["status"],
    output:
        paths.NVE_RESULT,
    params:
        md=config["md"],
        nve=config["metrics"]["nve"],
    log:
        LOG(f"{paths.NVE_MD}/nve_drift.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/nve_drift.py"


rule run_ramp_md:
    input:
        model=deployed_model,
        cell=ID_CELL,
    output:
        dump=paths.RAMP_FILES["dump"],
        log=paths.RAMP_FILES["log"],
        thermo=paths.RAMP_FILES["thermo"],
        status=paths.RAMP_FILES["status"],
    params:
        md=md_block,
        ramp=config["metrics"]["ramp"],
        material=MATERIAL,
        family=family_of,
    log:
        LOG(f"{paths.RAMP_MD}/run_ramp_md.log"),
    benchmark:
        BENCH(f"{paths.RAMP_MD}/run_ramp_md.tsv")
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/run_ramp_md.py"


rule ramp_failure:
    input:
        thermo=paths.RAMP_FILES["thermo"],
        status=paths.RAMP_FILES["status"],
    output:
        paths.RAMP_RESULT,
    params:
        md=config["md"],
        ramp=config["metrics"]["ramp"],
    log:
        LOG(f"{paths.RAMP_MD}/ramp_failure.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/ramp_failure.py"
