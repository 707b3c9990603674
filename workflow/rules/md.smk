rule run_md:
    input:
        model=deployed_model,
        cell=rules.build_structure.output.data,
    output:
        dump=f"{paths.MD}/dump.lammpstrj",
        log=f"{paths.MD}/log.lammps",
        thermo=f"{paths.MD}/thermo.csv",
        status=f"{paths.MD}/status.json",
    params:
        temp_K=lambda wildcards: int(wildcards.temp),
        seed=lambda wildcards: int(wildcards.vseed),
        md=config["md"],
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
        cell=rules.build_structure.output.data,
    output:
        dump=f"{paths.REFMD}/dump.lammpstrj",
        thermo=f"{paths.REFMD}/thermo.csv",
    params:
        temp_K=lambda wildcards: int(wildcards.temp),
        seed=0,
        settings=config["refmd"],
    log:
        LOG(f"{paths.REFMD}/run_reference_md.log"),
    benchmark:
        BENCH(f"{paths.REFMD}/run_reference_md.tsv")
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/run_reference_md.py"
