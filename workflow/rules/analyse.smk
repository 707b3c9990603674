rule score_run:
    input:
        dump=paths.MD_FILES["dump"],
        thermo=paths.MD_FILES["thermo"],
        status=paths.MD_FILES["status"],
        cell=paths.STRUCTURE_FILES["data"],
    output:
        score=paths.SCORE_FILES["score"],
        sn=paths.SCORE_FILES["sn"],
    params:
        stability=config["stability"],
        temp_K=temp_of,
        material=MATERIAL,
    log:
        LOG(f"{paths.ANALYSIS}/score_run.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/score_run.py"


rule compute_rdf:
    input:
        dump=paths.MD_FILES["dump"],
        status=paths.MD_FILES["status"],
        ref_dump=paths.REFMD_FILES["dump"],
    output:
        rdf=paths.RDF_FILES["rdf"],
        metrics=paths.RDF_FILES["metrics"],
    params:
        rdf=config["rdf"],
        material=MATERIAL,
    log:
        LOG(f"{paths.ANALYSIS}/compute_rdf.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/compute_rdf.py"
