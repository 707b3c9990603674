"""Reference data and start cells: the COMB potential in LAMMPS (:mod:`.comb`), frame sampling
(:mod:`.sampling`), the SAMD23 DFT set (:mod:`.samd23`), the train/valid/test set (:mod:`.reference`)
and the HfO2 cells and oxygen-deficient MD start cells (:mod:`.structures`).
Rules: ``make_reference_data``, ``build_structure``.
"""
