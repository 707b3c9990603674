"""The tables as markdown, as the paper prints them: "—" for a missing cell, a value with its
bootstrap interval where several runs exist, the published value beside ours."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from gnnff_stability.families import model_label
from gnnff_stability.settings import MaterialSettings

from .labels import is_paper_material, ratio_axis

__all__ = ["MISSING_MD", "table_markdown", "to_markdown"]

MISSING_MD = "—"


def _fmt_num(v: Any, digits: int) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)) or v is pd.NA:
        return MISSING_MD
    if isinstance(v, str):
        return v or MISSING_MD
    v = float(v)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 10 ** (-digits)):
        return f"{v:.2g}"
    return f"{v:.{digits}f}"


def _fmt_stat(row: Mapping[str, Any], name: str, digits: int) -> str:
    v = row.get(name)
    if v is None or pd.isna(v):
        return MISSING_MD
    text = _fmt_num(v, digits)
    n = row.get(f"{name}_n")
    lo, hi = row.get(f"{name}_lo"), row.get(f"{name}_hi")
    if n is not None and not pd.isna(n) and int(n) > 1:
        text += f" [{_fmt_num(lo, digits)}, {_fmt_num(hi, digits)}] n={int(n)}"
    return text


def _fmt_yn(row: Mapping[str, Any], name: str) -> str:
    v = row.get(name)
    if v is None or pd.isna(v):
        return MISSING_MD
    n = row.get(f"{name}_n")
    if n is not None and not pd.isna(n) and int(n) > 1 and 0 < v < 1:
        return f"{v * int(n):.0f}/{int(n)} Y"
    return "Y" if v >= 0.5 else "N"


def to_markdown(df: pd.DataFrame, spec: Sequence[tuple[str, Callable[[Mapping], str]]]) -> str:
    """Render a table as GitHub markdown; ``spec`` lists (header, row -> cell text)."""
    head = "| " + " | ".join(h.replace("|", "/") for h, _ in spec) + " |"
    sep = "|" + "|".join("---" for _ in spec) + "|"
    lines = [head, sep]
    for row in df.to_dict("records"):
        cells = [str(fn(row)).replace("|", "/") for _, fn in spec]
        lines.append("| " + " | ".join(cells) + " |")
    if df.empty:
        lines.append("| " + " | ".join(MISSING_MD for _ in spec) + " |")
    return "\n".join(lines) + "\n"


def _col(name, digits=None, kind="stat"):
    if kind == "text":
        return lambda r: (MISSING_MD if r.get(name) is None or (not isinstance(r.get(name), str)
                                                                and pd.isna(r.get(name)))
                          else str(r.get(name)) or MISSING_MD)
    if kind == "yn":
        return lambda r: _fmt_yn(r, name)
    if kind == "num":
        return lambda r: _fmt_num(r.get(name), digits)
    return lambda r: _fmt_stat(r, name, digits)


def _model_col(r):
    return model_label(r["model"], r["family"])


def _int_col(name):
    return lambda r: MISSING_MD if pd.isna(r.get(name)) else str(int(r[name]))


def _bench_col(r):
    """Table 3's benchmark overhead: ``+18.2 [+7.0, +25.7]`` (the interval where the benchmark gives one)."""
    v = r.get("bench_overhead_pct")
    if v is None or pd.isna(v):
        return MISSING_MD
    text = f"{v:+.1f}"
    lo, hi = r.get("bench_overhead_lo95"), r.get("bench_overhead_hi95")
    if lo is not None and hi is not None and not pd.isna(lo) and not pd.isna(hi):
        text += f" [{lo:+.1f}, {hi:+.1f}]"
    return text


def _bench_where(df: pd.DataFrame) -> str:
    """`` (embedded size, cpu)``: the benchmark rows' sizes and devices, for Table 3's caption."""
    if "bench_size" not in df.columns:
        return ""
    pairs = sorted({(s, d) for s, d in zip(df["bench_size"], df["bench_device"]) if isinstance(s, str) and s})
    return " (" + "; ".join(f"{s} size, {d}" for s, d in pairs) + ")" if pairs else " (no benchmark given)"


def _diff_col(name, digits):
    def fn(r):
        text = _fmt_stat(r, name, digits)
        d = r.get(f"{name}_diff")
        if text != MISSING_MD and d is not None and not pd.isna(d) and d != 0:
            text += f" ({d:+.{digits}f})"
        return text
    return fn


def _ratio_label(ratio: str) -> str:
    """``"1.10" -> "1:1.1"``, ``"2.00" -> "1:2.0"`` (the paper's column labels)."""
    text = f"{float(ratio):.2f}"
    return "1:" + (text[:-1] if text.endswith("0") else text)


def table_markdown(name: str, df: pd.DataFrame, ratios: Sequence[str], *, material: MaterialSettings) -> str:
    """The markdown of table ``name`` (one of :data:`gnnff_stability.paths.TABLE_NAMES`); Table A4's
    ratio column is headed by the material's OOD axis (``"Hf:O"``) and its distance columns by its pair
    labels (``material.pair_labels``)."""
    keys = [("model", _model_col), ("L", _int_col("layers")),
            ("method", _col("method", kind="text"))]
    temp = [("T_set K", _int_col("temp_K"))]
    paper = "paper"
    if name == "table1":
        spec = keys + temp + [
            ("FMAE meV/Å", _col("fmae_meV_per_A", 1)),
            (paper, _col("fmae_meV_per_A_paper", 1, "num")),
            ("EMAE meV/atom", _col("emae_meV_per_atom", 1)),
            (paper, _col("emae_meV_per_atom_paper", 1, "num")),
        ]
        for r in ratios:
            spec += [(_ratio_label(r), _col(f"outcome_{r}", kind="text")),
                     (paper, _col(f"outcome_{r}_paper", kind="text"))]
        title = "Table 1: stability vs number of layers (baseline training)"
    elif name == "table2":
        spec = keys + temp + [
            ("Corr value", _col("corr_value", 4)), (paper, _col("corr_value_paper", 4, "num")),
            ("FMAE meV/Å", _diff_col("fmae_meV_per_A", 1)),
            (paper, _col("fmae_meV_per_A_paper", 1, "num")),
            ("EMAE meV/atom", _diff_col("emae_meV_per_atom", 1)),
            (paper, _col("emae_meV_per_atom_paper", 1, "num")),
        ]
        for r in ratios:
            spec += [(f"S {_ratio_label(r)}", _col(f"s_index_{r}", 4)),
                     (paper, _col(f"s_index_{r}_paper", 4, "num"))]
        title = "Table 2: main result (difference vs the baseline of the same model in brackets)"
    elif name == "table3":
        spec = keys + [
            ("s/epoch", _col("s_per_epoch", 1)),
            ("baseline s/epoch", _col("baseline_s_per_epoch", 1, "num")),
            ("overhead % (indicative)", _col("overhead_pct", 1, "num")),
            ("reference labels (active learning)", _col("label_budget", 0, "num")),
            ("overhead % per step [95 %] (benchmark)", _bench_col),
            ("loss share of step % (benchmark profiler)", _col("bench_loss_share_pct", 1, "num")),
            ("paper s/epoch", _col("s_per_epoch_paper", 1, "num")),
            ("paper overhead %", _col("overhead_pct_paper", 0, "num")),
        ]
        title = ("Table 3: training time, seconds per epoch. The campaign's overhead compares epoch wall "
                 "times of separate jobs: indicative, it moves with the machine's load. The benchmark "
                 "column is the overhead per training step, the modes interleaved on the same batches "
                 "(benchmarks/bench_corr_overhead.py, bench_stabilisers.py; figures.overhead_benchmark), "
                 "at the benchmark's model size and device" + _bench_where(df) + ".")
    elif name == "tableA4":
        spec = keys + [("seed", _int_col("seed")), (ratio_axis(material), lambda r: _ratio_label(r["ratio"])),
                       ("cell", _int_col("cell_seed")),
                       ("T_set K", _int_col("temp_K")), ("v", _int_col("vseed")),
                       ("crash", _col("crashed", kind="yn")),
                       (paper, _col("crashed_paper", kind="yn")),
                       ("lost", _col("atoms_lost", kind="yn")),
                       (paper, _col("atoms_lost_paper", kind="yn")),
                       ("T mean K", _col("temp_mean_K", 0, "num")),
                       (paper, _col("temp_mean_K_paper", 0, "num")),
                       ("max force eV/Å", _col("fmax_eV_per_A", 3, "num")),
                       (paper, _col("fmax_eV_per_A_paper", 3, "num"))]
        for p, label in material.pair_labels.items():
            spec += [(f"{label} Å", _col(f"rmin_{p}_A", 2, "num")),
                     (paper, _col(f"rmin_{p}_A_paper", 1, "num"))]
        spec += [("Corr value", _col("corr_value", 4, "num")),
                 (paper, _col("corr_value_paper", 4, "num")),
                 ("S", _col("s_index", 4, "num")), (paper, _col("s_index_paper", 4, "num")),
                 ("TTF Legato", _col("ttf_legato_steps", 0, "num")),
                 ("TTF Arena", _col("ttf_arena_fraction", 3, "num"))]
        title = "Table A4: physical values per run"
    else:
        spec = keys + [("selection", _col("selection", kind="text")),
                       ("scheduler", _col("scheduler", kind="text"))] + temp
        physical = name in ("tableA1", "tableA2", "tableA3")
        for q, label, digits in (("fmae_meV_per_A", "FMAE", 1), ("emae_meV_per_atom", "EMAE", 1)):
            if q in df.columns:
                spec += [(label, _col(q, digits)), (paper, _col(f"{q}_paper", digits, "num"))]
        for r in ratios:
            tag = _ratio_label(r)
            spec += [(f"{tag} crash", _col(f"crashed_{r}", kind="yn")),
                     (paper, _col(f"crashed_{r}_paper", kind="yn"))]
            if physical:
                spec += [(f"{tag} lost", _col(f"atoms_lost_{r}", kind="yn")),
                         (paper, _col(f"atoms_lost_{r}_paper", kind="yn")),
                         (f"{tag} T K", _col(f"temp_mean_K_{r}", 0)),
                         (paper, _col(f"temp_mean_K_{r}_paper", 0, "num"))]
            spec += [(f"{tag} S", _col(f"s_index_{r}", 4)),
                     (paper, _col(f"s_index_{r}_paper", 4, "num"))]
        title = {
            "table4": "Table 4: NequIP feature-selection ablation",
            "tableA2": "Table A2: NequIP feature-selection ablation, physical values",
            "tableA1": "Table A1: Allegro feature selection (edge vs edge+env)",
            "tableA3": "Table A3: Allegro coefficient schedulers",
        }[name]
    note = ("Mean [95 % bootstrap interval] n=runs where several; '—' = missing; 'paper' = the "
            "published value (different data, hardware and run length: compare trends, not "
            "digits).")
    if not is_paper_material(material):  # the paper's values describe HfO2 only
        spec = [column for column in spec if column[0] != paper]
        note = "Mean [95 % bootstrap interval] n=runs where several; '—' = missing."
    return f"## {title}\n\n{note}\n\n" + to_markdown(df, spec)
