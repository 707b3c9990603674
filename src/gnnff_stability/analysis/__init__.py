"""Analysis of MD runs: the dump and thermo readers (:mod:`.dump`), the stability index
(:mod:`.stability`), minimum distances (:mod:`.distances`), scoring a run and the physical values of
Table A4 (:mod:`.score`), and RDFs against the reference MD (:mod:`.rdf`).
Rules: ``score_run``, ``compute_rdf``.
"""
