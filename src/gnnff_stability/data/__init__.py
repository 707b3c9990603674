"""Reference data and start cells: the COMB potential in LAMMPS (:mod:`.comb`) and its frame sampling
(:mod:`.sampling`), a pair-style reference potential and its sampling (:mod:`.pair_potential`), the
SAMD23 DFT set (:mod:`.samd23`), the train/valid/test set (:mod:`.reference`), the material's start cells
(:mod:`.structures`; HfO2's polymorphs in :mod:`.hfo2`).
Rules: ``make_reference_data``, ``build_structure``, ``pair_reference``.
"""
