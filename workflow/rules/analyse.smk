rule score_run:
    input:
        dump=rules.run_md.output.dump,
        thermo=rules.run_md.output.thermo,
        status=rules.run_md.output.status,
        cell=rules.build_structure.output.data,
    output:
        score=f"{paths.ANALYSIS}/stability.json",
        sn=f"{paths.ANALYSIS}/sn.csv",
    params:
        stability=config["stability"],
        temp_K=lambda wildcards: int(wildcards.temp),
    log:
        LOG(f"{paths.ANALYSIS}/score_run.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/score_run.py"


rule compute_rdf:
    input:
        dump=rules.run_md.output.dump,
        status=rules.run_md.output.status,
        ref_dump=rules.run_reference_md.output.dump,
    output:
        rdf=f"{paths.ANALYSIS}/rdf.csv",
        metrics=f"{paths.ANALYSIS}/rdf_metrics.json",
    params:
        r_max=config["rdf"]["r_max"],
        n_bins=config["rdf"]["n_bins"],
    log:
        LOG(f"{paths.ANALYSIS}/compute_rdf.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/compute_rdf.py"
