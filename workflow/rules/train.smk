rule train_model:
    input:
        train=rules.make_reference_data.output.train,
        valid=rules.make_reference_data.output.valid,
        test=rules.make_reference_data.output.test,
    output:
        model=f"{paths.TRAIN}/model.nequip.zip",
        metrics=f"{paths.TRAIN}/metrics.json",
        epochs=f"{paths.TRAIN}/metrics_epoch.csv",
    params:
        model=lambda wildcards: wildcards.model,
        layers=lambda wildcards: int(wildcards.layers),
        seed=lambda wildcards: int(wildcards.seed),
        model_settings=lambda wildcards: config["models"][wildcards.model],
        method_settings=lambda wildcards: config["methods"][wildcards.method],
        training=config["training"],
        run_dir=f"{paths.TRAIN}/run",
    log:
        LOG(f"{paths.TRAIN}/train_model.log"),
    benchmark:
        BENCH(f"{paths.TRAIN}/train_model.tsv")
    threads: 2
    conda:
        "../../envs/gnnff.yaml"
    script:
        "../../scripts/train_model.py"


rule compile_model:
    input:
        model=rules.train_model.output.model,
    output:
        compiled=f"{paths.TRAIN}/model.{{engine}}.nequip.pt2",
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
