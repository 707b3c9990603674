rule prefit_body_terms:
    # Phase 1 of a decomposition method: its two- and three-body terms fitted to the reference data.
    priority: 10
    input:
        train=paths.DATA_FILES["train"],
        valid=paths.DATA_FILES["valid"],
    output:
        prefit=paths.PREFIT,
    params:
        decomposition=lambda wildcards: config["methods"][wildcards.method]["decomposition"],
        seed=lambda wildcards: int(wildcards.seed),
        loss_coeffs=config["training"]["loss_coeffs"],
        material=MATERIAL,
    log:
        LOG(f"{paths.PREFIT_DIR}/prefit_body_terms.log"),
    benchmark:
        BENCH(f"{paths.PREFIT_DIR}/prefit_body_terms.tsv")
    # one thread, like train_model (below); the cluster profile sets its own counts
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/prefit_body_terms.py"


rule train_model:
    # ahead of MD runs that are ready: on few cores the trainings are the critical path
    priority: 10
    input:
        train=paths.DATA_FILES["train"],
        valid=paths.DATA_FILES["valid"],
        test=paths.DATA_FILES["test"],
        prefit=prefit_input,
    output:
        model=paths.TRAIN_FILES["model"],
        metrics=paths.TRAIN_FILES["metrics"],
        epochs=paths.TRAIN_FILES["epochs"],
    params:
        run=training_row,
        model=model_block,
        training=config["training"],
        material=MATERIAL,
        run_dir=train_dir,
    wildcard_constraints:
        method=method_regex(TRAINED_METHODS),  # an active method's model comes from its rounds (active.smk)
    log:
        LOG(f"{paths.TRAIN}/train_model.log"),
    benchmark:
        BENCH(f"{paths.TRAIN}/train_model.tsv")
    # One thread per training: the embedded models are too small for torch's intra-op threads to pay
    # (two one-thread trainings side by side finish sooner than two two-thread ones in a row), and a
    # two-thread job slows many-fold when anything else holds a core (its threads wait for each other at
    # every operation). The cluster profile sizes GPU trainings (workflow/profiles/slurm/config.yaml).
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/train_model.py"


rule compile_model:
    input:
        model=paths.MODEL_PACKAGE,
    output:
        compiled=paths.COMPILED_MODEL,
    params:
        target=compile_target,
        device=config["md"]["device"],
    wildcard_constraints:
        engine="embedded|hpc",
    log:
        LOG(f"{paths.TRAIN}/compile_model.{{engine}}.log"),
    benchmark:
        BENCH(f"{paths.TRAIN}/compile_model.{{engine}}.tsv")
    threads: 2
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/compile_model.py"


rule pair_interaction:
    # The pair force F_ij(r) the model learned, per bond type, over the test frames (Rajak et al.).
    input:
        model=paths.MODEL_PACKAGE,
        test=paths.DATA_FILES["test"],
    output:
        pair=paths.PAIR_INTERACTION,
    log:
        LOG(f"{paths.TRAIN}/pair_interaction.log"),
    threads: 1
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/pair_interaction.py"
