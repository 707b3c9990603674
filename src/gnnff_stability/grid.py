"""Expand the campaign grid into the table of runs, with every method resolved once.

The grid in the configuration is the only place that lists runs. :func:`expand_grid` turns it into a
:class:`pandas.DataFrame` with one row per MD run, and resolves there, once per method and family, what
each row means: the model family, the stabiliser flags, the correlation-loss settings of the method
preset for that family (feature selection, schedule, edge sampling), the SAM and decomposition settings,
the selection the Corr value is measured on, and the method's role in the paper (:func:`method_role`,
:func:`method_settings`). What a family is and can do comes from :mod:`gnnff_stability.families`. The
trainer, ``metrics.json``, the tables and the figures all read these columns; none of them interprets a
method preset again. :func:`training_runs` reduces the table to one
row per trained model, and :func:`with_paths` adds every output path from :mod:`gnnff_stability.paths`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from typing import Any

import pandas as pd

from gnnff_stability import paths
from gnnff_stability.families import FAMILIES
from gnnff_stability.settings import CorrSettings, MaterialSettings, MethodPreset, ModelPreset

__all__ = [
    "METHOD_COLUMNS",
    "PAPER_TABLE_KEYS",
    "RUN_KEYS",
    "SETTINGS_COLUMNS",
    "STAGES",
    "TRAIN_KEYS",
    "HARVEST_KEYS",
    "active_rounds",
    "expand_grid",
    "harvest_runs",
    "study_arms",
    "md_route",
    "method_presets",
    "method_role",
    "method_settings",
    "model_presets",
    "resolve_device",
    "stage_devices",
    "stoichiometric_ratio_of",
    "training_runs",
    "with_paths",
]

TRAIN_KEYS = ("model", "layers", "method", "seed")
RUN_KEYS = (*TRAIN_KEYS, "ratio", "cell_seed", "temp_K", "vseed")

def stoichiometric_ratio_of(config: Mapping[str, Any]) -> float:
    """The ratio of the undepleted start cell along ``material.ood`` (HfO2: 2.0 O per Hf; SiC: 1.0), to two
    decimals as in paths: nothing is removed there, so the cell seed changes nothing."""
    from gnnff_stability.data.structures import stoichiometric_ratio  # noqa: PLC0415

    return round(stoichiometric_ratio(MaterialSettings.from_config(config["material"])), 2)


#: Paper tables whose rows a method can stand for, each with the run-table column holding the paper
#: row key (``""`` where the method has no row in that table).
PAPER_TABLE_KEYS: dict[str, str] = {
    "main": "paper_main",  # Tables 1, 2, 3, A4: "baseline" or "corr"
    "table4": "paper_table4",  # Tables 4 / A2: NequIP selections under the cosine schedule
    "tableA1": "paper_tableA1",  # Table A1: Allegro selections under the fixed schedule
    "tableA3": "paper_tableA3",  # Table A3: Allegro schedulers with edge+env features
}

def md_route(family: str, md: Mapping[str, Any]) -> dict[str, Any]:
    """The ``md`` block a run of ``family`` uses: the configured one, or, for a family without a LAMMPS
    pair style (:attr:`gnnff_stability.families.Family.embedded_only`), the embedded engine with the
    packaged model."""
    if FAMILIES[family].embedded_only:
        return {**md, "engine": "embedded", "model_format": "package"}
    return dict(md)


#: The stages that put a model on a device, in order: training (with the test-set evaluation after it),
#: compilation of the deployed model, and MD.
STAGES = ("train", "compile", "md")


def stage_devices(config: Mapping[str, Any], family: str) -> dict[str, str | None]:
    """The device each stage of a ``family`` model runs on under a validated ``config``.

    ``train`` is ``training.device`` (``cpu``, ``cuda`` or ``auto``: Lightning picks the GPU when there
    is one; :func:`resolve_device` turns it into a device). ``compile`` is the device ``compile_model``
    builds the AOTInductor package for, ``None`` when the family's route deploys the package itself
    (:func:`md_route`). ``md`` is the device the MD engine runs the model on.
    """
    md = md_route(family, config["md"])
    compiled = md["engine"] == "hpc" or md["model_format"] == "compiled"
    return {
        "train": config["training"]["device"],
        "compile": md["device"] if compiled else None,
        "md": md["device"],
    }


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for a device setting; ``auto`` is ``cuda`` where torch sees a GPU."""
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if device == "auto":
        import torch  # noqa: PLC0415 (the run table needs no torch)

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


#: Columns resolved from the method preset for each row (scalars: the tables and figures read them).
METHOD_COLUMNS = ("family", "baseline", "stabilisers", "corr", "sam", "prior", "decomposition", "active",
                  "selection", "scheduler", "corr_selection", "role", *PAPER_TABLE_KEYS.values())

#: Columns holding a stabiliser's resolved settings for the row's family (a plain mapping, or ``None``
#: where the method does not use it): what the trainer passes on (:func:`method_settings`).
SETTINGS_COLUMNS = ("corr_settings", "sam_settings", "decomposition_settings", "active_settings")


def model_presets(config: Mapping[str, Any]) -> dict[str, ModelPreset]:
    """The validated config's model presets as :class:`ModelPreset` objects."""
    return {name: ModelPreset.from_config(name, block) for name, block in config["models"].items()}


def method_presets(config: Mapping[str, Any]) -> dict[str, MethodPreset]:
    """The validated config's method presets as :class:`MethodPreset` objects."""
    return {name: MethodPreset.from_config(name, block) for name, block in config["methods"].items()}


def method_role(method: MethodPreset, family: str) -> dict[str, Any]:
    """What a method preset means for one model family: its resolved columns of the run table.

    Returns
    -------
    dict
        ``family``; ``baseline`` (bool: no stabiliser at all); ``stabilisers`` (the ones switched on,
        joined by ``+``: e.g. ``corr+sam``; ``""`` for the baseline); ``corr``, ``sam``, ``decomposition``,
        ``active`` (bool each) and ``prior`` (``"none"`` or ``"zbl"``); ``selection`` and ``scheduler`` of the
        correlation loss (``""`` without one); ``corr_selection`` (the selection the Corr value is
        measured on: the method's own, else the family's ``default_corr_selection``); ``paper_main``
        (``"baseline"``, ``"corr"`` for the paper's main method, else ``""``); ``paper_table4``,
        ``paper_tableA1``, ``paper_tableA3`` (the paper's row key in that ablation, else ``""``); and
        ``role``, a label for people (``baseline``, ``paper corr``, ``Table 4 ablation (edge_0e)``,
        ``stabiliser (sam)``, ``combination (corr+sam)``, ``extension``, ...). Only the baseline and
        methods whose one stabiliser is the correlation loss stand for a paper row.
    """
    corr = method_settings(method, family)["corr_settings"]
    record = FAMILIES[family]
    stabilisers = method.stabilisers
    out: dict[str, Any] = {
        "family": family,
        "baseline": not stabilisers,
        "stabilisers": "+".join(stabilisers),
        "corr": corr is not None,
        "sam": method.sam is not None,
        "prior": method.prior,
        "decomposition": method.decomposition is not None,
        "active": method.active is not None,
        "selection": corr["selection"] if corr else "",
        "scheduler": corr["scheduler"] if corr else "",
        "corr_selection": corr["selection"] if corr else record.default_corr_selection,
    }
    if not stabilisers:
        keys = dict.fromkeys(PAPER_TABLE_KEYS.values(), "baseline")
        keys["paper_table4"] = "baseline" if family == "nequip" else ""
        keys["paper_tableA1"] = keys["paper_tableA3"] = "baseline" if family == "allegro" else ""
        return {**out, **keys, "role": "baseline"}
    if stabilisers != ("corr",):
        kind = "stabiliser" if len(stabilisers) == 1 else "combination"
        return {**out, **dict.fromkeys(PAPER_TABLE_KEYS.values(), ""), "role": f"{kind} ({out['stabilisers']})"}
    selection, scheduler = corr["selection"], corr["scheduler"]
    main_selection = record.paper_main_selection
    is_main = scheduler == "cosine" and (main_selection is None or selection == main_selection)
    keys = {
        "paper_main": "corr" if is_main else "",
        "paper_table4": selection if family == "nequip" and scheduler == "cosine" else "",
        "paper_tableA1": selection if family == "allegro" and scheduler == "fixed" else "",
        "paper_tableA3": scheduler if family == "allegro" and selection == "edge+env" else "",
    }
    if is_main:
        role = "paper corr"
    elif keys["paper_table4"]:
        role = f"Table 4 ablation ({selection})"
    elif keys["paper_tableA1"]:
        role = f"Table A1 ablation ({selection})"
    elif keys["paper_tableA3"]:
        role = f"Table A3 scheduler ({scheduler})"
    else:
        role = "extension"
    return {**out, **keys, "role": role}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def method_settings(method: MethodPreset, family: str) -> dict[str, Any]:
    """The settings of a method preset's stabilisers for one model family: its :data:`SETTINGS_COLUMNS`.

    Returns
    -------
    dict
        ``corr_settings``: ``None`` without a correlation loss, else the loss of this family,
        ``{selection, scheduler, c_min, c_max, t_cycle, sample_edges}`` (``selection`` is the family's
        entry of ``methods.<name>.corr.features``), the fields of
        :class:`gnnff_stability.settings.CorrSettings`; ``sam_settings``: the ``sam`` block or ``None``;
        ``decomposition_settings``: the ``decomposition`` block or ``None``; ``active_settings``: the
        ``active`` block or ``None``. Plain mappings throughout.
    """
    corr = None
    if method.corr is not None:
        # in the order of CorrSettings' fields; its fields are the schema's corr keys (a test checks)
        values = {**method.corr, "selection": method.corr["features"][family]}
        corr = {f.name: _plain(values[f.name]) for f in dataclasses.fields(CorrSettings)}
    return {
        "corr_settings": corr,
        "sam_settings": None if method.sam is None else _plain(method.sam),
        "decomposition_settings": None if method.decomposition is None else _plain(method.decomposition),
        "active_settings": None if method.active is None else method.active.as_dict(),
    }


def _matches(row: Mapping[str, Any], rule: Mapping[str, Any]) -> bool:
    for key, wanted in rule.items():
        allowed = wanted if isinstance(wanted, list) else [wanted]
        value = row[key]
        if key == "ratio":
            if not any(abs(float(value) - float(a)) < 1e-9 for a in allowed):
                return False
        elif value not in allowed:
            return False
    return True


def _applies(methods: Mapping[str, MethodPreset], name: str, family: str) -> bool:
    # an active method trains a family when it and its base can
    method = methods[name]
    if method.active is not None and not methods[method.active.base].applies_to(family):
        return False
    return method.applies_to(family)


def expand_grid(config: Mapping[str, Any]) -> pd.DataFrame:
    """One row per MD run of a validated configuration, with the method resolved for the row's family.

    Parameters
    ----------
    config
        A configuration returned by :func:`gnnff_stability.config.validate_config`.

    Returns
    -------
    pandas.DataFrame
        The key columns :data:`RUN_KEYS` (``ratio`` is O per Hf as float), sorted, without duplicates,
        then :data:`METHOD_COLUMNS` (see :func:`method_role`) and :data:`SETTINGS_COLUMNS` (see
        :func:`method_settings`), each resolved once per method and family. Methods are paired only with the model
        families their feature selection names; the stoichiometric cell takes only the first cell
        seed; ``grid.exclude`` rules remove the combinations they match.
    """
    grid = config["grid"]
    models, methods = model_presets(config), method_presets(config)
    top = stoichiometric_ratio_of(config)
    rows = []
    for model in grid["model"]:
        family = models[model].family
        applicable = [m for m in grid["method"] if _applies(methods, m, family)]
        resolved = {m: {**method_role(methods[m], family), **method_settings(methods[m], family)}
                    for m in applicable}
        for layers, method, seed, ratio, cell_seed, temp, vseed in itertools.product(
            grid["layers"][model], applicable, grid["seed"], grid["ratio"], grid["cell_seed"],
            grid["temp_K"], grid["vseed"]
        ):
            if float(ratio) >= top - 1e-9 and cell_seed != grid["cell_seed"][0]:
                continue  # no vacancy to draw: one cell
            row = dict(
                model=model,
                layers=int(layers),
                method=method,
                seed=int(seed),
                ratio=round(float(ratio), 2),
                cell_seed=int(cell_seed),
                temp_K=int(temp),
                vseed=int(vseed),
            )
            if not any(_matches(row, rule) for rule in grid.get("exclude", [])):
                rows.append({**row, **resolved[method]})
    runs = pd.DataFrame(rows, columns=[*RUN_KEYS, *METHOD_COLUMNS, *SETTINGS_COLUMNS])
    if runs.empty:
        raise ValueError(
            "the grid expands to no runs: every combination is excluded or no method applies to the "
            f"models {grid['model']}"
        )
    return runs.drop_duplicates(list(RUN_KEYS)).sort_values(list(RUN_KEYS)).reset_index(drop=True)


#: Key columns of a harvest run of an active method: the training it belongs to, the round, its start cell,
#: temperature and velocity seed.
HARVEST_KEYS = (*TRAIN_KEYS, "round", "ratio", "cell_seed", "temp_K", "vseed")


def active_rounds(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per round of every trained active method of a run table: ``TRAIN_KEYS``, ``family``, ``round``,
    ``base`` (the method whose model round 0 starts from) and ``rounds`` (the rounds asked for)."""
    rows = []
    for row in training_runs(runs).to_dict("records"):
        active = row.get("active_settings")
        if not active:
            continue
        for r in range(int(active["rounds"])):
            rows.append({**{k: row[k] for k in TRAIN_KEYS}, "family": row["family"], "round": r,
                         "base": active["base"], "rounds": int(active["rounds"])})
    return pd.DataFrame(rows, columns=[*TRAIN_KEYS, "family", "round", "base", "rounds"])


def harvest_runs(config: Mapping[str, Any], runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """The harvest MD runs of every active method of a validated configuration, marked ``harvest``.

    Each round of an active method's training (:func:`active_rounds`) runs its model on every combination of
    ``active.harvest``'s ratios (null: the grid's), cell seeds, temperatures (null: the grid's) and velocity
    seeds; the stoichiometric cell takes only the first cell seed. The configuration keeps these seeds
    disjoint from the grid's (:func:`gnnff_stability.config.validate_config`), so no harvest run starts from
    a cell and velocity seed the grid evaluates on. These rows are not in :func:`expand_grid`'s table: they
    never reach a stability table.

    Returns
    -------
    pandas.DataFrame
        :data:`HARVEST_KEYS`, ``family``, ``base`` and ``harvest`` (True), sorted; empty without an
        active method.
    """
    runs = expand_grid(config) if runs is None else runs
    grid = config["grid"]
    top = stoichiometric_ratio_of(config)
    rows = []
    for row in active_rounds(runs).to_dict("records"):
        harvest = config["methods"][row["method"]]["active"]["harvest"]
        ratios = harvest["ratio"] if harvest["ratio"] is not None else grid["ratio"]
        temps = harvest["temp_K"] if harvest["temp_K"] is not None else grid["temp_K"]
        for ratio, cell_seed, temp, vseed in itertools.product(ratios, harvest["cell_seed"], temps, harvest["vseed"]):
            if float(ratio) >= top - 1e-9 and cell_seed != harvest["cell_seed"][0]:
                continue
            rows.append({**row, "ratio": round(float(ratio), 2), "cell_seed": int(cell_seed), "temp_K": int(temp),
                         "vseed": int(vseed), "harvest": True})
    out = pd.DataFrame(rows, columns=[*HARVEST_KEYS, "family", "base", "harvest"])
    return out.drop_duplicates(list(HARVEST_KEYS)).sort_values(list(HARVEST_KEYS)).reset_index(drop=True)


def training_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per trained model (model × layers × method × seed) of a run table, method and settings
    columns kept."""
    keep = [c for c in runs.columns if c in (*TRAIN_KEYS, *METHOD_COLUMNS, *SETTINGS_COLUMNS)]
    return runs[keep].drop_duplicates(list(TRAIN_KEYS)).reset_index(drop=True)


def with_paths(runs: pd.DataFrame, campaign: str) -> pd.DataFrame:
    """The run table with the paths of each run's outputs, under the campaign's results root, as columns.

    Adds one column per entry of :data:`gnnff_stability.paths.RUN_FILES` (``metrics``, ``epochs``,
    ``status``, ``thermo``, ``dump``, ``score``, ``sn``, ``rdf``, ``rdf_metrics``, ...), filled for
    ``campaign`` (the config's ``campaign``).
    """
    out = runs.copy()
    recs = out.to_dict("records")
    for column, template in paths.bind(campaign).RUN_FILES.items():
        out[column] = [paths.fill(template, r) for r in recs]
    return out


def study_arms(runs: pd.DataFrame) -> tuple[str, list[str]] | None:
    """The arms of a campaign's study: its first baseline method (grid order) and every other method
    of the grid; ``None`` when the grid has no baseline method or nothing to compare it with.

    Parameters
    ----------
    runs
        The run table (:func:`gnnff_stability.grid.expand_grid`): ``method`` and ``baseline`` columns.
    """
    methods = list(dict.fromkeys(runs["method"]))
    baselines = list(dict.fromkeys(runs.loc[runs["baseline"].astype(bool), "method"]))
    if not baselines:
        return None
    others = [m for m in methods if m not in baselines]
    return (baselines[0], others) if others else None
