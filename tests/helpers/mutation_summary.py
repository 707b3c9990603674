"""Kill rate per module of the last ``mutmut run`` (``make mutate`` prints it after mutmut's own list).

Run from the repository root: ``python tests/helpers/mutation_summary.py``. Reads mutmut's per-file
results (``mutants/**/*.py.meta``). A timeout counts as killed (the mutant made the tests hang, which a
test run reports); "no tests" counts as surviving (no fast test reaches the code).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

KILLED = {1, 3}
TIMEOUT = {-24, 24, 36, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def verdict(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in KILLED:
        return "killed"
    if code in TIMEOUT:
        return "timeout"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    return "other"


def main(root: Path = Path("mutants")) -> int:
    metas = sorted(root.glob("**/*.py.meta"))
    if not metas:
        print(f"no mutmut results under {root}/: run `make mutate` first", file=sys.stderr)
        return 1
    total: Counter[str] = Counter()
    print(f"{'module':48s} {'mutants':>7s} {'killed':>7s} {'timeout':>7s} {'survived':>8s} {'no tests':>8s} "
          f"{'unchecked':>9s} {'kill rate':>9s}")
    for meta in metas:
        counts = Counter(verdict(c) for c in json.loads(meta.read_text())["exit_code_by_key"].values())
        total.update(counts)
        checked = sum(v for k, v in counts.items() if k != "not checked")
        rate = (counts["killed"] + counts["timeout"]) / checked if checked else float("nan")
        name = str(meta.relative_to(root)).removesuffix(".meta")
        print(f"{name:48s} {sum(counts.values()):7d} {counts['killed']:7d} {counts['timeout']:7d} "
              f"{counts['survived']:8d} {counts['no tests']:8d} {counts['not checked']:9d} {rate:9.1%}")
    checked = sum(v for k, v in total.items() if k != "not checked")
    rate = (total["killed"] + total["timeout"]) / checked if checked else float("nan")
    print(f"{'all':48s} {sum(total.values()):7d} {total['killed']:7d} {total['timeout']:7d} {total['survived']:8d} "
          f"{total['no tests']:8d} {total['not checked']:9d} {rate:9.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
