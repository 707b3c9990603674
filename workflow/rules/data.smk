rule make_reference_data:
    # first: everything but the start cells and the reference MD waits for it
    priority: 50
    input:
        reference_inputs,
    output:
        train=paths.DATA_FILES["train"],
        valid=paths.DATA_FILES["valid"],
        test=paths.DATA_FILES["test"],
        meta=paths.DATA_FILES["meta"],
    params:
        data=config["data"],
        material=MATERIAL,
    log:
        LOG(f"{paths.DATA}/make_reference_data.log"),
    benchmark:
        BENCH(f"{paths.DATA}/make_reference_data.tsv")
    threads: 2
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/make_reference_data.py"


rule pair_reference:
    # The reference potential's pair force for fig_pair_interaction: COMB or the material's pair style on an
    # isolated pair.
    output:
        curve=paths.PAIR_REFERENCE,
    params:
        material=MATERIAL,
        comb=config["data"]["comb"],
    log:
        LOG(f"{paths.DATA}/pair_reference.log"),
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/pair_reference.py"
