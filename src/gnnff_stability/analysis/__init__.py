"""Analysis of MD runs: the dump and thermo readers (:mod:`.dump`), the stability index
(:mod:`.stability`), minimum distances (:mod:`.distances`), scoring a run and the physical values of
Table A4 (:mod:`.score`), RDFs against the reference MD (:mod:`.rdf`), and the learned pair interaction per species pair
(:mod:`.pair_interaction`).
Rules: ``score_run``, ``compute_rdf``.
"""
