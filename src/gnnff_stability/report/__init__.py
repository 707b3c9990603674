"""Reporting: every run's results in one frame (:mod:`.collect`), the paper's tables (:mod:`.tables`,
:mod:`.markdown`) beside its published values (:mod:`.paper`), the figures (:mod:`.figures`), and the
regeneration from whatever results exist (:mod:`.regenerate`).
Rules: ``make_tables``, ``make_figures``, ``paper_figures``.
"""
