"""Training: the correlation loss (:mod:`.corr`), which tensors it acts on (:mod:`.features`), its
coefficient schedule (:mod:`.schedulers`), the training module nequip-train runs (:mod:`.module`), the
Hydra templates and overrides (:mod:`.hydra`), one training run (:mod:`.run`), evaluation
(:mod:`.evaluate`) and deployment (:mod:`.deploy`). Rules: ``train_model``, ``compile_model``.
"""
