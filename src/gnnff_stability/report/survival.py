"""Time to failure of every MD run: the endpoint, Kaplan-Meier curves per arm and a seed-stratified Cox model.

Endpoint
--------
A run of Table A4 gives one time-to-event record (:func:`run_endpoints`):

- ``crash``: an event at ``crash_step`` (the first step at which the engine or the thermo output saw
  the crash, :mod:`gnnff_stability.md.outcome`); at ``steps_done`` if the table has no crash step.
- ``fail``: an event at ``fail_step`` (the dumped snapshot in which two atoms were first closer than
  ``md.rmin_fail_A`` or had non-finite positions, or the end of the first hot window of a ramp). The
  whole-run temperature rule has no step (``fail_step`` empty): the run is an event at ``steps_done``,
  the time by which the failure was established. A snapshot-based time is the first dumped step that
  shows the failure, so it lies up to ``md.dump_every`` steps after the failure itself.
- ``stable``: censored at ``steps_done`` (the planned length for a run that completed).
- no classification (the run is missing): left out.

``steps_done`` is read from the table's ``steps_done`` column, else ``ttf_arena_fraction x steps_planned``.
Times are in ps: ``step x md.dt_fs / 1000``.

Estimators (lifelines; none written here)
-----------------------------------------
- Kaplan-Meier survival per arm with its pointwise 95 % interval (lifelines' exponential Greenwood
  interval), :func:`kaplan_meier`.
- The hazard ratio of a method against the baseline (:func:`hazard_ratio`): a Cox model with the method
  as the one covariate, **stratified by training seed** (each seed has its own baseline hazard, so the
  comparison is made within the training-seed pairs the arms share). Its likelihood-ratio test is the
  p-value reported (asymptotically the stratified log-rank test). With at least
  :data:`MIN_CLUSTERS` training seeds the interval uses cluster-robust (sandwich) errors with the
  training seed as the cluster; below that a sandwich over so few clusters is too narrow and the
  model-based interval is reported, which treats the runs of one model as independent given their
  stratum, so it is too narrow when the velocity seeds of one model agree.
- No hazard ratio where an arm has no event (the estimate is 0 or infinite): ``hr`` is NaN and
  ``note`` says which arm had none.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from gnnff_stability.families import model_label  # noqa: E402

from .labels import ratio_label  # noqa: E402

__all__ = ["CELL_KEYS", "EVENT_CLASSES", "MIN_CLUSTERS", "hazard_ratio", "kaplan_meier",
           "kaplan_meier_figure", "run_endpoints"]

logger = logging.getLogger(__name__)

#: Classifications that are an event (a run that ended badly).
EVENT_CLASSES: tuple[str, ...] = ("fail", "crash")
#: Classifications of a scored run.
_SCORED = ("stable", *EVENT_CLASSES)
#: Fewest clusters (training seeds) for a cluster bootstrap or a cluster-robust variance.
MIN_CLUSTERS = 10
#: A cell: the runs that one contrast compares.
CELL_KEYS: tuple[str, ...] = ("model", "layers", "ratio", "temp_K")


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def run_endpoints(table_a4: pd.DataFrame, *, dt_fs: float, steps_planned: int) -> pd.DataFrame:
    """The time-to-failure record of every scored run (the rules are in the module docstring).

    Parameters
    ----------
    table_a4
        One row per run: ``model``, ``layers``, ``method``, ``seed`` (training seed), ``ratio``,
        ``temp_K``, ``classification``; ``crash_step``, ``fail_step``, ``steps_done`` and
        ``ttf_arena_fraction`` where present.
    dt_fs
        The MD time step, fs (``md.dt_fs``).
    steps_planned
        The planned steps of a run (``md.steps``); the run length when ``steps_done`` is missing.

    Returns
    -------
    pandas.DataFrame
        The scored runs with ``event`` (bool), ``time_steps`` (float) and ``time_ps`` added.
    """
    if not (_finite(dt_fs) and float(dt_fs) > 0):
        raise ValueError(f"dt_fs must be a positive number of fs, got {dt_fs!r}")
    if int(steps_planned) <= 0:
        raise ValueError(f"steps_planned must be > 0, got {steps_planned!r}")
    missing = {"method", "seed", "classification", *CELL_KEYS} - set(table_a4)
    if missing:
        raise ValueError(f"Table A4 lacks the column(s) {sorted(missing)}")
    runs = table_a4[table_a4["classification"].isin(_SCORED)].copy()
    times = []
    for rec in runs.to_dict("records"):
        done: Any = rec.get("steps_done")
        if not _finite(done):
            frac = rec.get("ttf_arena_fraction")
            done = float(frac) * int(steps_planned) if _finite(frac) else float(steps_planned)
        step: Any = {"crash": rec.get("crash_step"), "fail": rec.get("fail_step")}.get(rec["classification"])
        times.append(float(step) if _finite(step) else float(done))
    runs["event"] = runs["classification"].isin(EVENT_CLASSES)
    runs["time_steps"] = np.asarray(times, dtype=float)
    runs["time_ps"] = runs["time_steps"] * float(dt_fs) / 1000.0
    return runs.reset_index(drop=True)


def kaplan_meier(endpoints: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Kaplan-Meier survival of each arm (``method``) of ``endpoints`` (:func:`run_endpoints`).

    Returns
    -------
    pandas.DataFrame
        Long form: ``method``, ``time_ps``, ``survival``, ``lo``, ``hi`` (pointwise interval at ``level``),
        one row per distinct time of each arm, starting at time 0.
    """
    from lifelines import KaplanMeierFitter  # noqa: PLC0415

    frames = []
    for method, sub in endpoints.groupby("method", sort=True):
        kmf = KaplanMeierFitter(alpha=1.0 - level).fit(sub["time_ps"], sub["event"])
        ci = kmf.confidence_interval_survival_function_
        frames.append(pd.DataFrame({
            "method": method, "time_ps": kmf.survival_function_.index.to_numpy(dtype=float),
            "survival": kmf.survival_function_.iloc[:, 0].to_numpy(dtype=float),
            "lo": ci.iloc[:, 0].to_numpy(dtype=float), "hi": ci.iloc[:, 1].to_numpy(dtype=float)}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["method", "time_ps", "survival", "lo", "hi"])


def hazard_ratio(endpoints: pd.DataFrame, baseline: str, method: str, *,
                 level: float = 0.95) -> dict[str, Any]:
    """Hazard ratio of ``method`` against ``baseline`` from a Cox model stratified by training seed.

    Parameters
    ----------
    endpoints
        :func:`run_endpoints` of one cell (other methods are ignored).

    Returns
    -------
    dict
        ``runs_<m>``, ``events_<m>`` for both arms; ``hr``, ``hr_lo``, ``hr_hi`` (NaN where not
        estimable), ``p`` (likelihood-ratio test; NaN where no arm has an event), ``errors``
        (``"cluster-robust"`` or ``"model-based"``), ``seeds`` (training seeds with runs in both arms)
        and ``note`` (why there is no estimate; empty otherwise).
    """
    from lifelines import CoxPHFitter  # noqa: PLC0415

    data = endpoints[endpoints["method"].isin([baseline, method])]
    out: dict[str, Any] = {"hr": math.nan, "hr_lo": math.nan, "hr_hi": math.nan, "p": math.nan,
                           "errors": "", "note": ""}
    for name in (baseline, method):
        part = data[data["method"] == name]
        out[f"runs_{name}"] = len(part)
        out[f"events_{name}"] = int(part["event"].sum())
    shared = set(data.loc[data["method"] == baseline, "seed"]) & set(data.loc[data["method"] == method, "seed"])
    out["seeds"] = len(shared)
    empty = [name for name in (baseline, method) if out[f"events_{name}"] == 0]
    if not shared:
        out["note"] = "no training seed has runs in both arms"
        return out
    if len(empty) == 2:
        out["note"] = "no events in either arm"
        return out
    if empty:
        out["note"] = f"no events in {empty[0]}: no hazard ratio"
    frame = pd.DataFrame({"time": data["time_ps"].to_numpy(dtype=float),
                          "event": data["event"].to_numpy(dtype=bool),
                          "arm": (data["method"] == method).to_numpy(dtype=float),
                          "stratum": data["seed"].to_numpy(), "cluster": data["seed"].to_numpy()})
    frame = frame[frame["stratum"].isin(shared)]
    robust = len(shared) >= MIN_CLUSTERS
    cph = CoxPHFitter(alpha=1.0 - level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifelines warns of the separation handled below
        if robust:
            cph.fit(frame, "time", "event", strata=["stratum"], cluster_col="cluster", robust=True)
        else:
            cph.fit(frame.drop(columns="cluster"), "time", "event", strata=["stratum"])
        p = float(cph.log_likelihood_ratio_test().p_value)
    out["p"] = p
    if empty:
        return out
    row = cph.summary.loc["arm"]
    out.update(hr=float(row["exp(coef)"]), hr_lo=float(row[f"exp(coef) lower {100 * level:g}%"]),
               hr_hi=float(row[f"exp(coef) upper {100 * level:g}%"]),
               errors="cluster-robust" if robust else "model-based")
    return out


def kaplan_meier_figure(endpoints: pd.DataFrame, path: str | Path, *, axis: str,
                        methods: Sequence[str] | None = None, level: float = 0.95) -> Path:
    """Kaplan-Meier curves of every arm with their pointwise bands, one panel per cell (PNG).

    Parameters
    ----------
    endpoints
        :func:`run_endpoints` of a campaign.
    path
        The figure's path (its suffix picks the format).
    axis
        The ratio's axis in the panel titles (:func:`~.labels.ratio_axis`, ``"Hf:O"``).
    methods
        Arms to draw, in this order (default: every method, sorted).
    """
    cells = sorted(endpoints.groupby(list(CELL_KEYS)).groups) if len(endpoints) else []
    if not cells:
        raise ValueError("no scored run: nothing to draw")
    methods = list(methods) if methods is not None else sorted(endpoints["method"].unique())
    colours = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, len(cells), figsize=(4.0 * len(cells), 3.4), squeeze=False,
                             sharey=True)
    for ax, cell in zip(axes[0], cells):
        sub = endpoints
        for key, value in zip(CELL_KEYS, cell):
            sub = sub[sub[key] == value]
        km = kaplan_meier(sub[sub["method"].isin(methods)], level=level)
        for k, name in enumerate(methods):
            arm = km[km["method"] == name]
            if arm.empty:
                continue
            n_ev = int(sub.loc[sub["method"] == name, "event"].sum())
            n_runs = int((sub["method"] == name).sum())
            ax.step(arm["time_ps"], arm["survival"], where="post", color=colours(k),
                    label=f"{name} ({n_ev}/{n_runs} failed)")
            ax.fill_between(arm["time_ps"], arm["lo"], arm["hi"], step="post", color=colours(k),
                            alpha=0.2, linewidth=0)
        model, layers, ratio, temp = cell
        family = sub["family"].iloc[0] if "family" in sub else model
        ax.set_title(f"{model_label(model, family)} L{int(layers)}, {ratio_label(axis, ratio)}, {int(temp)} K",
                     fontsize=9)
        ax.set_xlabel("time, ps")
        ax.set_ylim(-0.02, 1.02)
        ax.legend(fontsize=7, loc="lower left")
    axes[0][0].set_ylabel(f"runs without failure ({100 * level:g} % band)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    plt.close(fig)
    logger.info("Kaplan-Meier figure of %d cell(s) written to %s", len(cells), path)
    return path
