rule build_structure:
    output:
        data=paths.STRUCTURE_FILES["data"],
        xyz=paths.STRUCTURE_FILES["xyz"],
    params:
        ratio=ratio_of,
        cell_seed=cell_seed_of,
        structures=config["structures"],
        material=MATERIAL,
        comb=config["data"]["comb"],
    log:
        LOG(f"{paths.STRUCTURE}/build_structure.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/build_structure.py"
