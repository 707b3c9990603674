"""The paper's tables, built from whatever per-run results exist, beside the published values.

One aggregation, :func:`collect_results`, reads every run's files into one frame (a missing or
unreadable file gives NaN, never an error). :func:`build_tables` turns it into Tables 1-4 and
A1-A4 and writes each to its declared files: CSV (machine-readable: NaN for missing cells) and markdown
(readable: "—" for missing cells).

Conventions
-----------
- Training quantities (FMAE, EMAE, Corr value, s/epoch) are averaged over the distinct trained
  models (model × layers × method × seed); MD quantities (S_index, temperatures, ...) over every MD
  run (training seeds × velocity seeds) of a cell. A cell reports the mean, a 95 % percentile
  bootstrap interval of the mean (``_lo``, ``_hi``; 2000 resamples of a seeded generator, NaN for
  n < 2) and ``_n``. Booleans (crashed, atoms lost) are reported as the fraction of runs.
- Every MD table has one row per set-point temperature (``temp_K``); the paper reports 1200 K.
- ``<quantity>_paper`` columns hold the published value (from ``report/paper_reference.csv``) for
  the cells that have a counterpart in the paper (only for the paper's material, HfO2: another
  material's tables leave them empty and show only its own ratios).
- Per-pair columns (``rmin_<pair>_A``) and the ratio's axis label come from the material
  (:class:`~gnnff_stability.settings.MaterialSettings`). Which paper row a method stands for is resolved
  once, in the run table (:func:`gnnff_stability.grid.method_role`: columns ``paper_main``,
  ``paper_table4``, ``paper_tableA1``, ``paper_tableA3``); the tables only read those columns.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnff_stability.grid import METHOD_COLUMNS, TRAIN_KEYS
from gnnff_stability.paths import TABLE_FORMATS, TABLE_NAMES
from gnnff_stability.settings import MaterialSettings

from .beyond import table_s1, table_s1_markdown
from .collect import KEY_COLUMNS, bootstrap_mean, collect_results
from .labels import is_paper_material
from .markdown import table_markdown
from .overhead import benchmark_mode, benchmark_overhead, read_overhead_benchmark
from .paper import PaperValues, paper_reference

__all__ = ["PAPER_RATIOS", "TABLE_NAMES", "build_tables", "is_paper_material"]

logger = logging.getLogger(__name__)

#: The paper's cells (HfO2), shown in the tables of an HfO2 campaign whether or not it ran them.
PAPER_RATIOS: tuple[str, ...] = ("1.10", "1.55", "2.00")


def _run_label(classification: Any, crash_step: Any) -> str | None:
    if not isinstance(classification, str):
        return None
    if classification == "crash":
        return "crash" if pd.isna(crash_step) else f"crash@s{int(crash_step)}"
    return classification


def _outcome(sub: pd.DataFrame) -> str | float:
    labels = [lab for lab in (_run_label(c, s) for c, s in
                              zip(sub["classification"], sub["crash_step"])) if lab]
    if not labels:
        return np.nan
    if len(labels) == 1:
        return labels[0]
    n = len(labels)
    classes = Counter(lab.split("@")[0] for lab in labels)
    parts = []
    for cls, k in sorted(classes.items()):
        if cls == "crash":
            steps = sorted(int(lab[7:]) for lab in labels if lab.startswith("crash@s"))
            where = "" if not steps else (
                f" @s{steps[0]}" if steps[0] == steps[-1] else f" @s{steps[0]}–{steps[-1]}")
            parts.append(f"crash {k}/{n}{where}")
        else:
            parts.append(f"{cls} {k}/{n}")
    return "; ".join(parts)


def _stat(row: dict, name: str, values: Iterable[float], seed: int) -> None:
    mean, lo, hi, n = bootstrap_mean(values, seed=seed)
    row[name], row[f"{name}_lo"], row[f"{name}_hi"], row[f"{name}_n"] = mean, lo, hi, n


def _ratios(res: pd.DataFrame, paper_ratios: Iterable[str]) -> list[str]:
    found = {r for r in res["ratio"].dropna().unique()}
    return sorted(found | set(paper_ratios), key=float)


class _PaperCells(PaperValues):
    """The paper's values and cells where the material is the paper's; none (NaN) for another material."""

    def __init__(self, material: MaterialSettings) -> None:
        self.applies = is_paper_material(material)
        ref = paper_reference()
        super().__init__(ref if self.applies else ref.iloc[:0])

    def ratios(self, res: pd.DataFrame) -> list[str]:
        """The ratio tokens of the tables: those of ``res`` and, for the paper's material, the paper's."""
        return _ratios(res, PAPER_RATIOS if self.applies else ())


def _temps(res: pd.DataFrame) -> list[Any]:
    temps = sorted(int(t) for t in res["temp_K"].dropna().unique())
    return temps or [pd.NA]


def _training(res: pd.DataFrame) -> pd.DataFrame:
    return res.drop_duplicates(list(TRAIN_KEYS)).reset_index(drop=True)


def _md_cell(res: pd.DataFrame, model: str, layers: Any, method: str, ratio: str,
             temp: Any) -> pd.DataFrame:
    sel = (res["model"] == model) & (res["method"] == method) & (res["ratio"] == ratio)
    sel &= res["layers"].isna() if pd.isna(layers) else (res["layers"] == layers)
    if not pd.isna(temp):
        sel &= res["temp_K"] == temp
    return res[sel]


def _train_cell(train: pd.DataFrame, model: str, layers: Any, method: str) -> pd.DataFrame:
    sel = (train["model"] == model) & (train["method"] == method)
    sel &= train["layers"].isna() if pd.isna(layers) else (train["layers"] == layers)
    return train[sel]


def _row_keys(res: pd.DataFrame, methods: Callable[[str], Iterable[str]] | None = None,
              models: Iterable[str] | None = None) -> list[tuple[str, Any, str]]:
    keys = res[["model", "layers", "method"]].drop_duplicates()
    rows = []
    for model, layers, method in keys.itertuples(index=False):
        if models is not None and model not in models:
            continue
        if methods is not None and method not in methods(model):
            continue
        rows.append((model, layers, method))
    return sorted(rows, key=lambda t: (t[0], -1 if pd.isna(t[1]) else int(t[1]), t[2]))


def _train_stats(row: dict, sub: pd.DataFrame, seed: int,
                 names: Sequence[str] = ("fmae_meV_per_A", "emae_meV_per_atom")) -> None:
    for name in names:
        _stat(row, name, sub[name], seed)


def _baseline_of(res: pd.DataFrame) -> str | None:
    """The baseline method of the runs (the first by name, if several presets train without a loss)."""
    base = sorted(set(res.loc[res["baseline"], "method"]))
    return base[0] if base else None


def _family_of(res: pd.DataFrame, model: str) -> str:
    return str(res.loc[res["model"] == model, "family"].iloc[0])


def _meaning(res: pd.DataFrame, model: str, method: str) -> dict[str, Any]:
    """The run table's resolved method columns of a (model, method) pair."""
    row = res[(res["model"] == model) & (res["method"] == method)].iloc[0]
    return {k: row[k] for k in METHOD_COLUMNS}


def _table1(res, paper, seed):
    train = _training(res)
    rows = []
    for model, layers, method in _row_keys(res[res["baseline"]]):
        fam = _family_of(res, model)
        for temp in _temps(res):
            row = {"model": model, "family": fam, "layers": layers, "method": method, "temp_K": temp}
            _train_stats(row, _train_cell(train, model, layers, method), seed)
            for q in ("fmae_meV_per_A", "emae_meV_per_atom"):
                row[f"{q}_paper"] = paper.value("table1", fam, layers, "baseline", q)
            for ratio in paper.ratios(res):
                cell = _md_cell(res, model, layers, method, ratio, temp)
                row[f"outcome_{ratio}"] = _outcome(cell)
                _stat(row, f"s_index_{ratio}", cell["s_index"], seed)
                row[f"outcome_{ratio}_paper"] = paper.value("table1", fam, layers, "baseline",
                                                            "outcome", ratio, temp)
            rows.append(row)
    return pd.DataFrame(rows)


def _table2(res, paper, seed):
    train = _training(res)
    rows = []
    base = _baseline_of(res)
    for model, layers, method in _row_keys(res):
        fam = _family_of(res, model)
        pm = _meaning(res, model, method)["paper_main"] or None
        for temp in _temps(res):
            row = {"model": model, "family": fam, "layers": layers, "method": method, "temp_K": temp,
                   "paper_method": pm or ""}
            sub = _train_cell(train, model, layers, method)
            _train_stats(row, sub, seed, ("corr_value", "fmae_meV_per_A", "emae_meV_per_atom"))
            bsub = _train_cell(train, model, layers, base) if base else sub.iloc[:0]
            for q in ("fmae_meV_per_A", "emae_meV_per_atom"):
                row[f"{q}_diff"] = row[q] - bootstrap_mean(bsub[q])[0]
            for q in ("corr_value", "fmae_meV_per_A", "emae_meV_per_atom"):
                row[f"{q}_paper"] = paper.value("table2", fam, layers, pm, q)
            for ratio in paper.ratios(res):
                cell = _md_cell(res, model, layers, method, ratio, temp)
                _stat(row, f"s_index_{ratio}", cell["s_index"], seed)
                row[f"s_index_{ratio}_paper"] = paper.value("table2", fam, layers, pm, "s_index",
                                                            ratio, temp)
            rows.append(row)
    return pd.DataFrame(rows)


def _table3(res, paper, seed, bench=None):
    train = _training(res)
    base = _baseline_of(res)
    rows = []
    for model, layers, method in _row_keys(res):
        fam = _family_of(res, model)
        pm = _meaning(res, model, method)["paper_main"] or None
        row = {"model": model, "family": fam, "layers": layers, "method": method, "paper_method": pm or ""}
        cell = _train_cell(train, model, layers, method)
        _stat(row, "s_per_epoch", cell["s_per_epoch"], seed)
        # an active method's reference calls (labelled frames) over its rounds, mean over training seeds
        budget = cell["label_budget"] if "label_budget" in cell else pd.Series(dtype=float)
        row["label_budget"] = float(budget.mean()) if budget.notna().any() else np.nan
        b = (bootstrap_mean(_train_cell(train, model, layers, base)["s_per_epoch"])[0]
             if base else np.nan)
        row["baseline_s_per_epoch"] = b
        row["overhead_pct"] = 100.0 * (row["s_per_epoch"] / b - 1.0) if b and b > 0 else np.nan
        row["s_per_epoch_paper"] = paper.value("table3", fam, layers, pm, "s_per_epoch")
        row["overhead_pct_paper"] = paper.value("table3", fam, layers, pm, "overhead_pct")
        first = res[(res["model"] == model) & (res["method"] == method)].iloc[0]
        mode = benchmark_mode(first["stabilisers"], first.get("sam_settings"), pm or "")
        row.update(benchmark_overhead(bench, fam, layers, mode))
        rows.append(row)
    return pd.DataFrame(rows)


def _ablation(res, paper, seed, *, table, family, key_column, physical, train_qs):
    """Shared body of Tables 4/A2 (NequIP selections) and A1/A3 (Allegro selections/schedulers).

    ``key_column`` is the run-table column holding the method's row key in this paper table.
    """
    train = _training(res)
    models = [m for m in res["model"].unique() if _family_of(res, m) == family]
    rows = []
    for model, layers, method in _row_keys(res, models=models):
        meaning = _meaning(res, model, method)
        key = meaning[key_column] or None
        for temp in _temps(res):
            row = {"model": model, "family": family, "layers": layers, "method": method, "temp_K": temp,
                   "selection": meaning["selection"], "scheduler": meaning["scheduler"],
                   "paper_method": key or ""}
            _train_stats(row, _train_cell(train, model, layers, method), seed, train_qs)
            for q in train_qs:
                row[f"{q}_paper"] = paper.value(table, family, layers, key, q)
            for ratio in paper.ratios(res):
                cell = _md_cell(res, model, layers, method, ratio, temp)
                qs = ("crashed", "atoms_lost", "temp_mean_K", "s_index") if physical else (
                    "crashed", "s_index")
                for q in qs:
                    _stat(row, f"{q}_{ratio}", cell[q], seed)
                    row[f"{q}_{ratio}_paper"] = paper.value(table, family, layers, key, q, ratio,
                                                            temp)
            rows.append(row)
    return pd.DataFrame(rows)


def _tableA4(res, paper, seed, pair_names):
    rows = []
    qs = ("crashed", "atoms_lost", "temp_mean_K", "temp_max_K", "fmax_eV_per_A",
          *(f"rmin_{p}_A" for p in pair_names), "s_index")
    extra = ("ttf_legato_steps", "ttf_arena_fraction", "steps_done", "fail_step", "js_mean", "mae_mean")
    order = res.sort_values(list(KEY_COLUMNS), key=lambda s: s.astype(str))
    for rec in order.to_dict("records"):
        fam = rec["family"]
        pm = rec["paper_main"] or None
        row = {k: rec[k] for k in KEY_COLUMNS}
        row["family"] = fam
        row["classification"] = rec["classification"]
        row["crash_step"] = rec["crash_step"]
        for q in (*qs, *extra):
            row[q] = rec[q]
        for q in qs:
            row[f"{q}_paper"] = paper.value("tableA4", fam, rec["layers"], pm, q, rec["ratio"],
                                            rec["temp_K"])
        # the model's Corr value beside its runs; the paper's is that of Table 2
        row["corr_value"] = rec["corr_value"]
        row["corr_value_paper"] = paper.value("table2", fam, rec["layers"], pm, "corr_value")
        row["paper_method"] = pm or ""
        rows.append(row)
    return pd.DataFrame(rows)


def build_tables(runs: pd.DataFrame, outputs: Mapping[str, str | Path], *,
                 material: MaterialSettings,
                 seed: int = 0,
                 overhead_benchmark: str | Path | Sequence[str | Path] = ()) -> dict[str, pd.DataFrame]:
    """Build Tables 1-4, A1-A4 and S1 (:mod:`.beyond`) and write each to its declared CSV and markdown file.

    Parameters
    ----------
    runs
        The run table (see :func:`~gnnff_stability.report.collect.collect_results`): key columns,
        resolved method columns and file paths.
    outputs
        The file of each table and format, by output name ``<name>_<ext>`` (``table2_csv``,
        ``table2_md``; :func:`gnnff_stability.paths.table_files`, a rule's ``output``). Parent
        directories are created.
    material
        The species and OOD axis: Table A4's ``rmin_<pair>_A`` columns (``material.pair_names``), the
        markdown's pair labels and ratio axis, and whether the paper's values apply
        (:func:`is_paper_material`).
    seed
        Seed of the bootstrap generator.
    overhead_benchmark
        Benchmark CSVs (``figures.overhead_benchmark``): Table 3 prints their per-step overhead of each
        method beside the epoch-time one (:mod:`.overhead`); none leaves those columns empty.

    Returns
    -------
    dict
        ``name -> DataFrame`` for every name of :data:`TABLE_NAMES`.
    """
    missing = [f"{name}_{ext}" for name in TABLE_NAMES for ext in TABLE_FORMATS if f"{name}_{ext}" not in outputs]
    if missing:
        raise ValueError(f"no output file given for table(s) {missing}; expected one per name of "
                         f"{list(TABLE_NAMES)} and format of {list(TABLE_FORMATS)}")
    res = collect_results(pd.DataFrame(runs), material=material)
    paper = _PaperCells(material)
    tables = {
        "table1": _table1(res, paper, seed),
        "table2": _table2(res, paper, seed),
        "table3": _table3(res, paper, seed, read_overhead_benchmark(overhead_benchmark)),
        "table4": _ablation(res, paper, seed, table="table4", family="nequip",
                            key_column="paper_table4", physical=False,
                            train_qs=("fmae_meV_per_A", "emae_meV_per_atom")),
        "tableA1": _ablation(res, paper, seed, table="tableA1", family="allegro",
                             key_column="paper_tableA1", physical=True,
                             train_qs=("fmae_meV_per_A", "emae_meV_per_atom")),
        "tableA2": _ablation(res, paper, seed, table="tableA2", family="nequip",
                             key_column="paper_table4", physical=True, train_qs=()),
        "tableA3": _ablation(res, paper, seed, table="tableA3", family="allegro",
                             key_column="paper_tableA3", physical=True,
                             train_qs=("fmae_meV_per_A", "emae_meV_per_atom")),
        "tableA4": _tableA4(res, paper, seed, material.pair_names),
        "tableS1": table_s1(pd.DataFrame(runs)),
    }
    ratios = paper.ratios(res)
    for name, df in tables.items():
        if df.columns.empty:
            df = tables[name] = pd.DataFrame(columns=["model", "family", "layers", "method"])
        csv, md = Path(outputs[f"{name}_csv"]), Path(outputs[f"{name}_md"])
        for path in (csv, md):
            path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(csv, index=False)
        text = (table_s1_markdown(df) if name == "tableS1"
                else table_markdown(name, df, ratios, material=material))
        md.write_text(text)
        logger.info("wrote %s and %s (%d rows)", csv, md, len(df))
    return tables
