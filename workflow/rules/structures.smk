rule build_structure:
    output:
        data=f"{paths.STRUCTURE}/cell.data",
        xyz=f"{paths.STRUCTURE}/cell.xyz",
    params:
        ratio=lambda wildcards: float(wildcards.ratio),
        structures=config["structures"],
    log:
        LOG(f"{paths.STRUCTURE}/build_structure.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/build_structure.py"
