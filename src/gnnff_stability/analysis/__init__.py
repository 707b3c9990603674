"""Analysis of MD runs: the dump and thermo readers (:mod:`.dump`), the stability index and the
physical values of Table A4 (:mod:`.stability`), and RDFs against the reference MD (:mod:`.rdf`).
Rules: ``score_run``, ``compute_rdf``.
"""
