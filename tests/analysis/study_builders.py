"""Table A4 frames of seeded studies, for the study statistics' tests."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

#: The CPU study of docs/findings.md (3 training seeds x 3 velocity seeds, 2000 steps): per method,
#: training seed and ratio, the velocity seeds' classifications ("s" stable, "f" fail) and the step
#: of each failure (the steps docs/findings.md gives; the corr failures' assignment to cells is ours).
FINDINGS_RUNS: dict[tuple[str, int, float], str] = {
    ("baseline", 0, 1.55): "ffs", ("corr", 0, 1.10): "ssf", ("corr", 0, 1.55): "sfs"}
FINDINGS_FAIL_STEPS: dict[tuple[str, int, float], list[int]] = {
    ("baseline", 0, 1.55): [900, 1800], ("corr", 0, 1.10): [1800], ("corr", 0, 1.55): [1200]}
FINDINGS_STEPS = 2000
FINDINGS_DT_FS = 0.25


def study_table_a4(runs: Mapping[tuple[str, int, float], str] = FINDINGS_RUNS,
                   fail_steps: Mapping[tuple[str, int, float], list[int]] = FINDINGS_FAIL_STEPS, *,
                   methods: tuple[str, ...] = ("baseline", "corr"), seeds: int = 3,
                   ratios: tuple[float, ...] = (1.10, 1.55, 2.00), vseeds: int = 3,
                   steps: int = FINDINGS_STEPS, s_stable: float = 0.9, s_fail: float = 0.8) -> pd.DataFrame:
    """One row per run; cells not in ``runs`` are stable in every velocity seed."""
    rows = []
    for method in methods:
        for seed in range(seeds):
            for ratio in ratios:
                key = (method, seed, ratio)
                classes = runs.get(key, "s" * vseeds)
                steps_of = iter(fail_steps.get(key, []))
                for vseed, c in enumerate(classes):
                    fail = c == "f"
                    rows.append({"model": "allegro", "family": "allegro", "layers": 3, "method": method,
                                 "seed": seed, "vseed": vseed, "ratio": ratio, "temp_K": 1200,
                                 "classification": "fail" if fail else "stable",
                                 "crash_step": float("nan"),
                                 "fail_step": float(next(steps_of)) if fail else float("nan"),
                                 "steps_done": steps, "s_index": s_fail if fail else s_stable})
    return pd.DataFrame(rows)
