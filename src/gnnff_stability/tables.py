"""The paper's tables, built from whatever per-run results exist, beside the published values.

One aggregation, :func:`collect_results`, reads every run's files into one frame (a missing or
unreadable file gives NaN, never an error). :func:`build_tables` turns it into Tables 1-4 and
A1-A4 and writes ``<name>.csv`` (machine-readable: NaN for missing cells) and ``<name>.md``
(readable: "—" for missing cells) for each.

Conventions
-----------
- Training quantities (FMAE, EMAE, Corr value, s/epoch) are averaged over the distinct trained
  models (model × layers × method × seed); MD quantities (S_index, temperatures, ...) over every MD
  run (training seeds × velocity seeds) of a cell. A cell reports the mean, a 95 % percentile
  bootstrap interval of the mean (``_lo``, ``_hi``; 2000 resamples of a seeded generator, NaN for
  n < 2) and ``_n``. Booleans (crashed, atoms lost) are reported as the fraction of runs.
- Every MD table has one row per set-point temperature (``temp_K``); the paper reports 1200 K.
- ``<quantity>_paper`` columns hold the published value (from ``data/paper_reference.csv``) for
  the cells that have a counterpart in the paper. A method is matched to a paper row by what it
  does, read from the methods configuration: ``baseline`` is the preset without a correlation loss;
  the paper's ``corr`` (Tables 2, 3, A4) is the cosine schedule with NequIP ``edge_1o`` or Allegro
  ``edge+env`` features (the Allegro selection of the paper's main run is inferred: its Table A3
  fixed-schedule row equals Table A1's edge+env row, and its cosine row equals Table 2); Table 4/A2
  rows are matched by NequIP selection under the cosine schedule, Table A1 rows by Allegro selection
  under the fixed schedule, Table A3 rows by scheduler with Allegro ``edge+env`` features.
"""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnff_stability.grid import RUN_KEYS, TRAIN_KEYS
from gnnff_stability.paths import TABLE_NAMES, ratio_token

__all__ = [
    "KEY_COLUMNS",
    "PAPER_RATIOS",
    "TABLE_NAMES",
    "bootstrap_mean",
    "build_tables",
    "collect_results",
    "method_roles",
    "paper_reference",
    "to_markdown",
]

logger = logging.getLogger(__name__)

KEY_COLUMNS: tuple[str, ...] = RUN_KEYS
PAPER_RATIOS: tuple[str, ...] = ("1.10", "1.55", "2.00")
MISSING_MD = "—"

#: Quantities read from each file kind: (column in the results frame, key in the JSON file).
METRICS_KEYS = ("emae_meV_per_atom", "fmae_meV_per_A", "corr_value", "s_per_epoch", "epochs",
                "train_wall_s")
SCORE_KEYS = ("s_index", "classification", "crash_step", "crashed", "atoms_lost", "temp_mean_K",
              "temp_max_K", "fmax_eV_per_A", "rmin_HfHf_A", "rmin_HfO_A", "rmin_OO_A",
              "n_snapshots", "n_planned", "ttf_legato_steps", "ttf_arena_fraction", "steps_done")
RDF_KEYS = ("js_HfHf", "js_HfO", "js_OO", "js_mean", "mae_HfHf", "mae_HfO", "mae_OO", "mae_mean")

_DISPLAY_MODEL = {"nequip": "NequIP", "allegro": "Allegro", "gemnet": "GemNet-T"}
_PAPER_MAIN = {"nequip": {"edge_1o"}, "allegro": {"edge+env"}, "gemnet": None}
_N_BOOT = 2000


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
def _ratio_token(value: Any) -> str | float:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return np.nan
    return ratio_token(value)


def _read_json(path: Any, cache: dict[str, dict | None]) -> dict | None:
    if path is None or (isinstance(path, float) and math.isnan(path)) or path == "":
        return None
    key = str(path)
    if key not in cache:
        try:
            cache[key] = json.loads(Path(key).read_text())
        except FileNotFoundError:
            cache[key] = None
        except (OSError, ValueError) as exc:
            logger.warning("could not read %s (%s); treating it as missing", key, exc)
            cache[key] = None
    return cache[key]


def collect_results(runs: pd.DataFrame) -> pd.DataFrame:
    """Read every run's result files into one frame; missing files give NaN.

    Parameters
    ----------
    runs
        One row per MD run with the key columns :data:`KEY_COLUMNS` and file-path columns
        ``metrics`` (training metrics.json), ``score`` (stability.json) and ``rdf_metrics`` (the
        RDF metrics JSON; a ``rdf`` column ending in ``.json`` is accepted instead). Missing
        columns and missing files are allowed.

    Returns
    -------
    pandas.DataFrame
        The key columns (``ratio`` as the two-decimal token, ``layers``/``seed``/``temp_K``/
        ``vseed`` as nullable integers), the quantities of :data:`METRICS_KEYS`,
        :data:`SCORE_KEYS` and :data:`RDF_KEYS`, and ``has_metrics``, ``has_score``, ``has_rdf``.
    """
    missing = [k for k in KEY_COLUMNS if k not in runs.columns]
    if missing:
        raise ValueError(
            f"runs lacks key column(s) {missing}; expected {list(KEY_COLUMNS)}, "
            f"found {list(runs.columns)}"
        )
    out = runs[list(KEY_COLUMNS)].copy()
    out["model"] = out["model"].astype(str)
    out["method"] = out["method"].astype(str)
    out["ratio"] = [_ratio_token(v) for v in out["ratio"]]
    for col in ("layers", "seed", "temp_K", "vseed"):
        out[col] = pd.to_numeric(out[col], errors="coerce").round().astype("Int64")

    rdf_col = "rdf_metrics" if "rdf_metrics" in runs.columns else None
    if rdf_col is None and "rdf" in runs.columns:
        rdf_col = "rdf"
    cache: dict[str, dict | None] = {}
    sources = (("metrics", "metrics", METRICS_KEYS), ("score", "score", SCORE_KEYS),
               ("rdf", rdf_col, RDF_KEYS))
    for flag, col, keys in sources:
        records = []
        for path in (runs[col] if col in runs.columns else [None] * len(runs)):
            if flag == "rdf" and isinstance(path, str) and not path.endswith(".json"):
                path = None
            records.append(_read_json(path, cache))
        out[f"has_{flag}"] = [r is not None for r in records]
        for key in keys:
            out[key] = [np.nan if r is None or r.get(key) is None else r.get(key) for r in records]
    for key in (*METRICS_KEYS, *SCORE_KEYS, *RDF_KEYS):
        if key == "classification":
            continue
        out[key] = pd.to_numeric(out[key], errors="coerce").astype(float)
    logger.info("collected %d runs: %d with metrics, %d with scores, %d with RDF metrics",
                len(out), int(out["has_metrics"].sum()), int(out["has_score"].sum()),
                int(out["has_rdf"].sum()))
    return out.reset_index(drop=True)


def paper_reference() -> pd.DataFrame:
    """The paper's published values (``data/paper_reference.csv``), as strings, '' where missing.

    Columns ``table, model, layers, method, ratio, temp_K, quantity, value, note``.
    """
    text = resources.files("gnnff_stability").joinpath("data/paper_reference.csv").read_text()
    from io import StringIO  # noqa: PLC0415

    return pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)


def method_roles(method_info: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Normalise the methods configuration to ``name -> {baseline, features, scheduler}``.

    Parameters
    ----------
    method_info
        The config's ``methods`` block (``name -> {"corr": None | {"features": {family:
        selection}, "scheduler": ...}, ...}``), or already ``name -> {"features", "scheduler"}``
        (``features`` None for a baseline).
    """
    roles = {}
    for name, preset in method_info.items():
        if not isinstance(preset, Mapping):
            raise ValueError(f"method {name!r}: expected a mapping, got {preset!r}")
        corr = preset["corr"] if "corr" in preset else preset
        features = None if corr is None else corr.get("features")
        roles[str(name)] = {
            "baseline": not features,
            "features": dict(features or {}),
            "scheduler": None if not features else corr.get("scheduler"),
        }
    return roles


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------
def bootstrap_mean(values: Iterable[float], *, seed: int = 0, n_boot: int = _N_BOOT,
                   level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean and percentile-bootstrap interval of the mean of the finite values.

    Returns
    -------
    mean, lo, hi, n
        ``lo``/``hi`` are NaN for fewer than 2 values; everything but ``n`` is NaN for none.
    """
    x = np.asarray([v for v in values if v is not None], dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return np.nan, np.nan, np.nan, 0
    mean = float(x.mean())
    if n < 2:
        return mean, np.nan, np.nan, n
    rng = np.random.default_rng(seed)
    boots = x[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return mean, float(np.quantile(boots, alpha)), float(np.quantile(boots, 1.0 - alpha)), n


def _stat(row: dict, name: str, values: Iterable[float], seed: int) -> None:
    mean, lo, hi, n = bootstrap_mean(values, seed=seed)
    row[name], row[f"{name}_lo"], row[f"{name}_hi"], row[f"{name}_n"] = mean, lo, hi, n


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


# --------------------------------------------------------------------------------------------
# Paper lookup
# --------------------------------------------------------------------------------------------
class _Paper:
    def __init__(self, ref: pd.DataFrame) -> None:
        self.ref = ref

    def value(self, table: str, model: str, layers: Any, method: str | None, quantity: str,
              ratio: str | None = None, temp_K: Any = None) -> Any:
        if method is None:
            return np.nan
        r = self.ref
        sel = (r["table"] == table) & (r["model"] == model) & (r["method"] == method) & (
            r["quantity"] == quantity)
        if layers is not None and not pd.isna(layers):
            sel &= (r["layers"] == "") | (r["layers"] == str(int(layers)))
        sel &= (r["ratio"] == (ratio or ""))
        if ratio:
            if temp_K is None or pd.isna(temp_K):
                return np.nan
            sel &= (r["temp_K"] == "") | (r["temp_K"] == str(int(temp_K)))
        hits = r.loc[sel, "value"]
        if hits.empty or hits.iloc[0] == "":
            return np.nan
        v = hits.iloc[0]
        try:
            return float(v)
        except ValueError:
            return v


def _family(model: str, families: Mapping[str, Any] | None) -> str:
    entry = (families or {}).get(model, model)
    return str(entry.get("family", model)) if isinstance(entry, Mapping) else str(entry)


def _paper_main(role: dict, family: str) -> str | None:
    """'baseline', 'corr' (the paper's main method for this family), or None."""
    if role["baseline"]:
        return "baseline"
    if role["scheduler"] != "cosine":
        return None
    wanted = _PAPER_MAIN.get(family)
    sel = role["features"].get(family)
    if wanted is None:
        return "corr" if sel is not None else None
    return "corr" if sel in wanted else None


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
def _ratios(res: pd.DataFrame) -> list[str]:
    found = {r for r in res["ratio"].dropna().unique()}
    return sorted(found | set(PAPER_RATIOS), key=float)


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


def _baseline_of(roles: dict, present: Iterable[str]) -> str | None:
    base = sorted(m for m in present if roles.get(m, {}).get("baseline"))
    return base[0] if base else None


def _role(roles: dict, method: str) -> dict:
    if method not in roles:
        logger.warning("method %r is not in the methods configuration; treated as unknown", method)
        return {"baseline": False, "features": {}, "scheduler": None}
    return roles[method]


def _table1(res, roles, paper, families, seed):
    train = _training(res)
    rows = []
    baselines = [k for k in roles if roles[k]["baseline"]]
    for model, layers, method in _row_keys(res, lambda m: baselines):
        fam = _family(model, families)
        for temp in _temps(res):
            row = {"model": model, "layers": layers, "method": method, "temp_K": temp}
            _train_stats(row, _train_cell(train, model, layers, method), seed)
            for q in ("fmae_meV_per_A", "emae_meV_per_atom"):
                row[f"{q}_paper"] = paper.value("table1", fam, layers, "baseline", q)
            for ratio in _ratios(res):
                cell = _md_cell(res, model, layers, method, ratio, temp)
                row[f"outcome_{ratio}"] = _outcome(cell)
                _stat(row, f"s_index_{ratio}", cell["s_index"], seed)
                row[f"outcome_{ratio}_paper"] = paper.value("table1", fam, layers, "baseline",
                                                            "outcome", ratio, temp)
            rows.append(row)
    return pd.DataFrame(rows)


def _table2(res, roles, paper, families, seed):
    train = _training(res)
    rows = []
    present = set(res["method"])
    base = _baseline_of(roles, present)
    for model, layers, method in _row_keys(res):
        fam = _family(model, families)
        pm = _paper_main(_role(roles, method), fam)
        for temp in _temps(res):
            row = {"model": model, "layers": layers, "method": method, "temp_K": temp,
                   "paper_method": pm or ""}
            sub = _train_cell(train, model, layers, method)
            _train_stats(row, sub, seed, ("corr_value", "fmae_meV_per_A", "emae_meV_per_atom"))
            bsub = _train_cell(train, model, layers, base) if base else sub.iloc[:0]
            for q in ("fmae_meV_per_A", "emae_meV_per_atom"):
                row[f"{q}_diff"] = row[q] - bootstrap_mean(bsub[q])[0]
            for q in ("corr_value", "fmae_meV_per_A", "emae_meV_per_atom"):
                row[f"{q}_paper"] = paper.value("table2", fam, layers, pm, q)
            for ratio in _ratios(res):
                cell = _md_cell(res, model, layers, method, ratio, temp)
                _stat(row, f"s_index_{ratio}", cell["s_index"], seed)
                row[f"s_index_{ratio}_paper"] = paper.value("table2", fam, layers, pm, "s_index",
                                                            ratio, temp)
            rows.append(row)
    return pd.DataFrame(rows)


def _table3(res, roles, paper, families, seed):
    train = _training(res)
    base = _baseline_of(roles, set(res["method"]))
    rows = []
    for model, layers, method in _row_keys(res):
        fam = _family(model, families)
        pm = _paper_main(_role(roles, method), fam)
        row = {"model": model, "layers": layers, "method": method, "paper_method": pm or ""}
        _stat(row, "s_per_epoch", _train_cell(train, model, layers, method)["s_per_epoch"], seed)
        b = (bootstrap_mean(_train_cell(train, model, layers, base)["s_per_epoch"])[0]
             if base else np.nan)
        row["baseline_s_per_epoch"] = b
        row["overhead_pct"] = 100.0 * (row["s_per_epoch"] / b - 1.0) if b and b > 0 else np.nan
        row["s_per_epoch_paper"] = paper.value("table3", fam, layers, pm, "s_per_epoch")
        row["overhead_pct_paper"] = paper.value("table3", fam, layers, pm, "overhead_pct")
        rows.append(row)
    return pd.DataFrame(rows)


def _ablation(res, roles, paper, families, seed, *, table, family, match, physical, train_qs):
    """Shared body of Tables 4/A2 (NequIP selections) and A1/A3 (Allegro selections/schedulers)."""
    train = _training(res)
    models = [m for m in res["model"].unique() if _family(m, families) == family]
    rows = []
    for model, layers, method in _row_keys(res, models=models):
        role = _role(roles, method)
        key = "baseline" if role["baseline"] else match(role)
        for temp in _temps(res):
            row = {"model": model, "layers": layers, "method": method, "temp_K": temp,
                   "selection": "" if role["baseline"] else role["features"].get(family, ""),
                   "scheduler": role["scheduler"] or "", "paper_method": key or ""}
            _train_stats(row, _train_cell(train, model, layers, method), seed, train_qs)
            for q in train_qs:
                row[f"{q}_paper"] = paper.value(table, family, layers, key, q)
            for ratio in _ratios(res):
                cell = _md_cell(res, model, layers, method, ratio, temp)
                qs = ("crashed", "atoms_lost", "temp_mean_K", "s_index") if physical else (
                    "crashed", "s_index")
                for q in qs:
                    _stat(row, f"{q}_{ratio}", cell[q], seed)
                    row[f"{q}_{ratio}_paper"] = paper.value(table, family, layers, key, q, ratio,
                                                            temp)
            rows.append(row)
    return pd.DataFrame(rows)


def _nequip_match(role):
    return role["features"].get("nequip") if role["scheduler"] == "cosine" else None


def _allegro_sel_match(role):
    return role["features"].get("allegro") if role["scheduler"] == "fixed" else None


def _allegro_sched_match(role):
    return role["scheduler"] if role["features"].get("allegro") == "edge+env" else None


def _tableA4(res, roles, paper, families, seed):
    rows = []
    qs = ("crashed", "atoms_lost", "temp_mean_K", "temp_max_K", "fmax_eV_per_A", "rmin_HfHf_A",
          "rmin_HfO_A", "rmin_OO_A", "s_index")
    extra = ("ttf_legato_steps", "ttf_arena_fraction", "js_mean", "mae_mean")
    order = res.sort_values(list(KEY_COLUMNS), key=lambda s: s.astype(str))
    for rec in order.to_dict("records"):
        fam = _family(rec["model"], families)
        pm = _paper_main(_role(roles, rec["method"]), fam)
        row = {k: rec[k] for k in KEY_COLUMNS}
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


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------
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
    return _DISPLAY_MODEL.get(r["model"], r["model"])


def _int_col(name):
    return lambda r: MISSING_MD if pd.isna(r.get(name)) else str(int(r[name]))


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


def _markdown(name: str, df: pd.DataFrame, ratios: Sequence[str]) -> str:
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
            ("overhead %", _col("overhead_pct", 1, "num")),
            ("paper s/epoch", _col("s_per_epoch_paper", 1, "num")),
            ("paper overhead %", _col("overhead_pct_paper", 0, "num")),
        ]
        title = "Table 3: training time, seconds per epoch"
    elif name == "tableA4":
        spec = keys + [("seed", _int_col("seed")), ("Hf:O", lambda r: _ratio_label(r["ratio"])),
                       ("T_set K", _int_col("temp_K")), ("v", _int_col("vseed")),
                       ("crash", _col("crashed", kind="yn")),
                       (paper, _col("crashed_paper", kind="yn")),
                       ("lost", _col("atoms_lost", kind="yn")),
                       (paper, _col("atoms_lost_paper", kind="yn")),
                       ("T mean K", _col("temp_mean_K", 0, "num")),
                       (paper, _col("temp_mean_K_paper", 0, "num")),
                       ("max force eV/Å", _col("fmax_eV_per_A", 3, "num")),
                       (paper, _col("fmax_eV_per_A_paper", 3, "num"))]
        for p, label in (("HfHf", "Hf–Hf"), ("HfO", "Hf–O"), ("OO", "O–O")):
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
    return f"## {title}\n\n{note}\n\n" + to_markdown(df, spec)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
def build_tables(
    runs: pd.DataFrame,
    method_info: Mapping[str, Any],
    out_dir: str | Path,
    *,
    model_families: Mapping[str, Any] | None = None,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    """Build Tables 1-4 and A1-A4 and write ``<out_dir>/<name>.csv`` and ``.md`` for each.

    Parameters
    ----------
    runs
        The run table (see :func:`collect_results`): key columns and file paths.
    method_info
        The config's ``methods`` block (see :func:`method_roles`).
    out_dir
        Directory for the tables (created).
    model_families
        ``model name -> family`` (``nequip``/``allegro``/``gemnet``), or the config's ``models``
        block (``name -> {"family": ...}``), for model names that differ from their family;
        default: the name is the family.
    seed
        Seed of the bootstrap generator.

    Returns
    -------
    dict
        ``name -> DataFrame`` for every name of :data:`TABLE_NAMES`.
    """
    res = collect_results(pd.DataFrame(runs))
    roles = method_roles(method_info)
    unknown = sorted(set(res["method"]) - set(roles))
    if unknown:
        logger.warning("methods %s of the runs are not in the methods configuration", unknown)
    paper = _Paper(paper_reference())
    fam = model_families
    tables = {
        "table1": _table1(res, roles, paper, fam, seed),
        "table2": _table2(res, roles, paper, fam, seed),
        "table3": _table3(res, roles, paper, fam, seed),
        "table4": _ablation(res, roles, paper, fam, seed, table="table4", family="nequip",
                            match=_nequip_match, physical=False,
                            train_qs=("fmae_meV_per_A", "emae_meV_per_atom")),
        "tableA1": _ablation(res, roles, paper, fam, seed, table="tableA1", family="allegro",
                             match=_allegro_sel_match, physical=True,
                             train_qs=("fmae_meV_per_A", "emae_meV_per_atom")),
        "tableA2": _ablation(res, roles, paper, fam, seed, table="tableA2", family="nequip",
                             match=_nequip_match, physical=True, train_qs=()),
        "tableA3": _ablation(res, roles, paper, fam, seed, table="tableA3", family="allegro",
                             match=_allegro_sched_match, physical=True,
                             train_qs=("fmae_meV_per_A", "emae_meV_per_atom")),
        "tableA4": _tableA4(res, roles, paper, fam, seed),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ratios = _ratios(res)
    for name, df in tables.items():
        if df.columns.empty:
            df = tables[name] = pd.DataFrame(columns=["model", "layers", "method"])
        df.to_csv(out / f"{name}.csv", index=False)
        (out / f"{name}.md").write_text(_markdown(name, df, ratios))
        logger.info("wrote %s (%d rows)", out / f"{name}.csv", len(df))
    return tables
