"""Load and validate a campaign configuration.

The JSON schema (``schemas/config.schema.yaml``) states every key with its description, default and
allowed values, and refuses unknown keys. :func:`validate_config` fills the defaults and then checks what
a schema cannot: that the grid names presets that exist, that every model has its layer counts, and that
the MD intervals fit together. Every error names the offending key, the value found and what is allowed,
and is raised before any job starts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gnnff_stability.data.splits import split_counts
from gnnff_stability.families import FAMILIES

__all__ = ["ConfigError", "load_config", "load_schema", "material_block", "validate_config", "with_campaign"]


class ConfigError(ValueError):
    """A campaign configuration that cannot be run, with the key, the value and what is allowed."""


def load_schema() -> dict[str, Any]:
    """The configuration schema shipped with the library."""
    text = resources.files("gnnff_stability").joinpath("schemas/config.schema.yaml").read_text()
    return yaml.safe_load(text)


def _with_defaults(validator_class):
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    def set_defaults_additional(validator, additional, instance, schema):
        if isinstance(instance, dict) and isinstance(additional, dict):
            extras = [k for k in instance if k not in schema.get("properties", {})]
            for key in extras:
                yield from validator.descend(instance[key], additional, path=key)
        elif additional is False and isinstance(instance, dict):
            allowed = sorted(schema.get("properties", {}))
            for key in instance:
                if key not in allowed:
                    yield jsonschema.ValidationError(
                        f"unknown key {key!r}; allowed keys here: {', '.join(allowed)}"
                    )

    return jsonschema.validators.extend(
        validator_class,
        {"properties": set_defaults, "additionalProperties": set_defaults_additional},
    )


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _where(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "<top level>"


def _fill_defaults(value: Any, sub: Mapping[str, Any]) -> None:
    for key, prop in sub.get("properties", {}).items():
        if "default" in prop:
            value.setdefault(key, copy.deepcopy(prop["default"]))
        if isinstance(value.get(key), dict):
            _fill_defaults(value[key], prop)


def _fill_method_defaults(config: dict[str, Any], schema: dict[str, Any]) -> None:
    # `oneOf` branches are validated without filling defaults; fill the object branch explicitly.
    props = schema["properties"]["methods"]["additionalProperties"]["properties"]
    for preset in config.get("methods", {}).values():
        for block in ("corr", "sam", "decomposition", "active"):
            if isinstance(preset.get(block), dict):
                _fill_defaults(preset[block], props[block]["oneOf"][1])
        active = preset.get("active")
        committee = active["harvest"]["committee"] if isinstance(active, dict) else None
        if isinstance(committee, dict):
            harvest = props["active"]["oneOf"][1]["properties"]["harvest"]
            _fill_defaults(committee, harvest["properties"]["committee"]["oneOf"][1])


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a configuration and return a copy with every default filled in.

    Every mapping of the copy has its keys sorted, so that two files that differ only in key order give
    equal rule parameters (Snakemake's params rerun trigger is sensitive to key order).

    Raises
    ------
    ConfigError
        For the first problem found, naming the key path, the value and what is allowed.
    """
    schema = load_schema()
    config = copy.deepcopy(dict(config))
    _check_model_keys(config)
    _check_ramp_length(config)
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = min(errors, key=lambda e: len(list(e.absolute_path)))
        best = jsonschema.exceptions.best_match([error]) or error
        message = best.message
        node = best  # a failed alternative of a described oneOf/anyOf: say what the key allows
        while node is not None and not (node.validator in ("oneOf", "anyOf") and "description" in node.schema):
            node = node.parent
        if node is not None:
            message += f"; allowed: {node.schema['description']}"
        raise ConfigError(f"config key {_where(best)}: {message}")
    _fill_method_defaults(config, schema)
    for preset in config["models"].values():
        # The schema fills every architecture's defaults; keep only the ones this family reads.
        for key in set(preset) - FAMILIES[preset["family"]].model_keys - {"family", "overrides"}:
            del preset[key]
    _check_semantics(config)
    from gnnff_stability.materials import check_material  # noqa: PLC0415 (builds the unit cell)

    try:
        check_material(config)
    except ValueError as exc:
        raise ConfigError(f"config key {exc}") from None
    return _canonical(config)


def _check_ramp_length(config: Mapping[str, Any]) -> None:
    # before the defaults are filled: `steps` given by the user, not by the schema's default
    metrics = config.get("metrics")
    ramp = metrics.get("ramp") if isinstance(metrics, Mapping) else None
    if isinstance(ramp, Mapping) and ramp.get("rate_K_per_ps") is not None and "steps" in ramp:
        raise ConfigError(
            f"config key metrics.ramp: give steps ({ramp['steps']}) or rate_K_per_ps "
            f"({ramp['rate_K_per_ps']}), not both: the rate sets the ramp's length"
        )


def _canonical(value: Any) -> Any:
    # Mappings with sorted keys: Snakemake's params rerun trigger compares values key order included, so a
    # config file that only lists its keys in another order must not look like a change.
    if isinstance(value, Mapping):
        return {key: _canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _check_model_keys(config: Mapping[str, Any]) -> None:
    # Before the schema fills defaults: only here are the keys the user wrote still told apart.
    models = config.get("models")
    if not isinstance(models, Mapping):
        return
    every_family_key = frozenset().union(*(f.model_keys for f in FAMILIES.values()))
    for name, preset in models.items():
        if not isinstance(preset, Mapping) or preset.get("family") not in FAMILIES:
            continue  # the schema reports these
        allowed = FAMILIES[preset["family"]].model_keys | {"family", "overrides"}
        wrong = sorted((set(preset) & every_family_key) - allowed)
        if wrong:
            raise ConfigError(
                f"config key models.{name}: {', '.join(wrong)} do not apply to family "
                f"{preset['family']!r}; allowed: {', '.join(sorted(allowed))}"
            )


def _check_semantics(config: dict[str, Any]) -> None:
    grid, models, methods = config["grid"], config["models"], config["methods"]
    for name in grid["model"]:
        if name not in models:
            raise ConfigError(
                f"config key grid.model: model preset {name!r} is not defined; "
                f"defined in `models`: {', '.join(sorted(models))}"
            )
        if name not in grid["layers"]:
            raise ConfigError(
                f"config key grid.layers: no layer counts for model {name!r}; "
                f"give e.g. grid.layers.{name}: [2]"
            )
    for name in grid["layers"]:
        if name not in grid["model"]:
            raise ConfigError(
                f"config key grid.layers.{name}: {name!r} is not in grid.model "
                f"({', '.join(grid['model'])})"
            )
    for name in grid["method"]:
        if name not in methods:
            raise ConfigError(
                f"config key grid.method: method preset {name!r} is not defined; "
                f"defined in `methods`: {', '.join(sorted(methods))}"
            )
    for name, preset in methods.items():
        corr = preset.get("corr")
        if corr is None:
            continue
        if corr["c_min"] > corr["c_max"]:
            raise ConfigError(
                f"config key methods.{name}.corr: c_min {corr['c_min']} exceeds c_max {corr['c_max']}"
            )
    _check_decomposition(config)
    _check_active(config)
    md = config["md"]
    if md["dump_every"] % md["thermo_every"]:
        raise ConfigError(
            f"config key md.thermo_every: {md['thermo_every']} must divide md.dump_every "
            f"({md['dump_every']}) so every snapshot has a temperature"
        )
    if md["steps"] < md["dump_every"]:
        raise ConfigError(
            f"config key md.steps: {md['steps']} is shorter than one snapshot interval "
            f"(md.dump_every = {md['dump_every']})"
        )
    equil = config["stability"]["equil_steps"]
    if equil // md["dump_every"] >= md["steps"] // md["dump_every"]:
        raise ConfigError(
            f"config key stability.equil_steps: {equil} leaves no snapshot of the {md['steps']}-step "
            f"runs (md.dump_every {md['dump_every']}) to score"
        )
    ramp = config["metrics"]["ramp"]
    if ramp["t_stop_K"] <= ramp["t_start_K"]:
        raise ConfigError(
            f"config key metrics.ramp.t_stop_K: {ramp['t_stop_K']} must exceed metrics.ramp.t_start_K "
            f"({ramp['t_start_K']}): the ramp heats"
        )
    if ramp["rate_K_per_ps"] is not None:
        from gnnff_stability.settings import RampMetricSettings  # noqa: PLC0415 (settings imports config)

        ramp_steps = RampMetricSettings.from_config(ramp).ramp_steps(md["dt_fs"])
        if ramp_steps < 10:
            raise ConfigError(
                f"config key metrics.ramp.rate_K_per_ps: {ramp['rate_K_per_ps']} K/ps makes a ramp of "
                f"{ramp_steps} steps of md.dt_fs {md['dt_fs']} fs; at least 10 are needed"
            )
    refmd = config["refmd"]
    if refmd["enabled"]:
        if refmd["dump_every"] % refmd["thermo_every"]:
            raise ConfigError(
                f"config key refmd.thermo_every: {refmd['thermo_every']} must divide refmd.dump_every "
                f"({refmd['dump_every']}) so every snapshot has a temperature"
            )
        if refmd["steps"] < refmd["dump_every"]:
            raise ConfigError(
                f"config key refmd.steps: {refmd['steps']} is shorter than one snapshot interval "
                f"(refmd.dump_every = {refmd['dump_every']})"
            )
    data = config["data"]
    split = data["split"]
    if abs(sum(split) - 1.0) > 1e-6:
        raise ConfigError(f"config key data.split: fractions {split} must sum to 1")
    if data["source"] == "comb":  # SAMD23 comes split
        n_frames = data["comb"]["n_frames"]
        n_train, n_valid, n_test = split_counts(n_frames, split)
        if n_train < 1:
            raise ConfigError(
                f"config key data.comb.n_frames: {n_frames} frames are too few for data.split {split}: "
                f"valid and test take {n_valid} + {n_test} (at least one each), train would get {n_train}; "
                "give more frames or smaller valid/test fractions"
            )
    if config["data"]["source"] == "extxyz":
        _check_extxyz(config["data"]["extxyz"], config["material"]["species"])
    shown = config["figures"]["temp_K"]
    if shown is not None and shown not in grid["temp_K"]:
        raise ConfigError(
            f"config key figures.temp_K: {shown} K is not a temperature of the grid; "
            f"allowed: {', '.join(str(t) for t in grid['temp_K'])} (or null for the lowest)"
        )
    if data["label"] != "comb" and data["source"] not in ("comb", "reference"):
        raise ConfigError(
            f"config key data.label: {data['label']!r} labels the frames the reference potential samples, so it "
            f"needs data.source: comb or reference (data.source is {data['source']!r}, whose frames keep their "
            "own labels); allowed with this source: comb"
        )


_EXTXYZ_LAYOUTS = ({"file"}, {"train", "valid", "test"})


def _check_extxyz(block: Mapping[str, Any], species: Sequence[str]) -> None:
    # The user's own data: one of the two layouts, files that exist, and only the campaign's species.
    from gnnff_stability.data.extxyz import extxyz_species  # noqa: PLC0415 (ase-free, read only here)

    given = {key: block[key] for key in ("file", "train", "valid", "test") if block[key]}
    if set(given) not in _EXTXYZ_LAYOUTS:
        raise ConfigError(
            f"config key data.extxyz: found {', '.join(sorted(given)) or 'no file'}; give either `file` (one "
            "file, split by data.split and data.seed) or all of `train`, `valid` and `test`"
        )
    for key, name in given.items():
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"config key data.extxyz.{key}: file {name!r} does not exist (looked in {Path.cwd()})")
        try:
            found = extxyz_species(path)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config key data.extxyz.{key}: {name} is not extended XYZ: {exc}") from None
        unknown = sorted(set(found) - set(species))
        if unknown:
            first = ", ".join(f"{s} (first in frame {found[s]})" for s in unknown)
            raise ConfigError(
                f"config key data.extxyz.{key}: {name} holds species {first}; the campaign's species are "
                f"{', '.join(species)} (material.species)"
            )


def with_campaign(config: Mapping[str, Any], source: str | Path) -> dict[str, Any]:
    """``config`` with its ``campaign`` named after the file it came from (its stem) when it names none."""
    out = dict(config)
    out.setdefault("campaign", Path(source).stem)
    return out


def _check_decomposition(config: dict[str, Any]) -> None:
    # Body-term cutoffs: well formed per species pair, the three-body ones within the two-body ones, and
    # all within the r_max of every model of the grid the method trains (auto: its RDF range).
    from .models.cutoffs import AUTO, pair_cutoffs
    species = config["material"]["species"]

    grid, models = config["grid"], config["models"]
    for name in grid["method"]:
        dec = config["methods"][name].get("decomposition")
        if dec is None:
            continue
        where = f"methods.{name}.decomposition"
        body = dec["body"]
        try:
            r_cut = None if body["r_cut"] == AUTO else pair_cutoffs(body["r_cut"], species, "r_cut")
            r_cut3 = body["r_cut_three_body"]
            r_cut3 = None if r_cut3 is None else pair_cutoffs(r_cut3, species, "r_cut_three_body")
        except ValueError as err:
            raise ConfigError(f"config key {where}.body: {err}") from None
        if r_cut is not None and r_cut3 is not None:
            for pair, cut3 in r_cut3.items():
                if cut3 > r_cut[pair]:
                    raise ConfigError(
                        f"config key {where}.body.r_cut_three_body: {pair} = {cut3} Å exceeds r_cut of {pair} "
                        f"({r_cut[pair]} Å); the three-body cutoff must not exceed the two-body one"
                    )
        if r_cut is None:
            key, bound = f"{where}.prefit.rdf_r_max", {"auto (its RDF range)": float(dec["prefit"]["rdf_r_max"])}
        else:
            key, bound = f"{where}.body.r_cut", r_cut
        for model in grid["model"]:
            if not FAMILIES[models[model]["family"]].supports_decomposition:
                continue
            r_max = float(models[model]["r_max"])
            for pair, cut in bound.items():
                if cut > r_max:
                    raise ConfigError(
                        f"config key {key}: {pair} = {cut} Å exceeds r_max = {r_max} Å of model {model!r}, "
                        f"which trains method {name!r}; the body terms must lie within the model's cutoff"
                    )


def _check_active(config: dict[str, Any]) -> None:
    # Active learning: a base that is trained by the grid and not itself active, harvest cells and velocity
    # seeds the grid never evaluates on, ordered trust levels, and a fine-tune that keeps the architecture.
    grid, methods = config["grid"], config["methods"]
    for name in grid["method"]:
        active = methods[name].get("active")
        if active is None:
            continue
        where = f"methods.{name}.active"
        base = active["base"]
        if base not in grid["method"]:
            raise ConfigError(
                f"config key {where}.base: {base!r} is not in grid.method ({', '.join(grid['method'])}); round 0 "
                "starts from the trained model of a method the grid trains"
            )
        if methods[base].get("active") is not None:
            raise ConfigError(f"config key {where}.base: {base!r} is itself an active method; name one that is not")
        if active["label"] == "comb" and config["data"]["source"] != "comb":
            raise ConfigError(
                f"config key {where}.label: comb labels would join training data of data.source "
                f"{config['data']['source']!r}, labelled by another reference; give that reference's labeller "
                "(package.module:callable or command:...), or use data.source: comb"
            )
        harvest = active["harvest"]
        for key in ("cell_seed", "vseed"):
            shared = sorted(set(harvest[key]) & set(grid[key]))
            if shared:
                raise ConfigError(
                    f"config key {where}.harvest.{key}: {shared} are also in grid.{key} {grid[key]}; harvest runs "
                    f"must use seeds the grid does not evaluate on"
                )
        committee = harvest["committee"]
        if committee is not None and committee["trust_lo"] >= committee["trust_hi"]:
            raise ConfigError(
                f"config key {where}.harvest.committee: trust_lo {committee['trust_lo']} must be below trust_hi "
                f"{committee['trust_hi']}"
            )
        if committee is not None and len(set(committee["seeds"])) != len(committee["seeds"]):
            raise ConfigError(f"config key {where}.harvest.committee.seeds: {committee['seeds']} repeats a seed")
        if committee is not None and not set(committee["seeds"]) <= set(grid["seed"]):
            raise ConfigError(
                f"config key {where}.harvest.committee.seeds: {committee['seeds']} must be training seeds of the "
                f"grid ({grid['seed']}): the committee is the models of {base!r} with these seeds"
            )
        if active["retrain"]["mode"] == "finetune":
            for key, none in (("prior", "none"), ("decomposition", None)):
                if methods[base].get(key, none) != methods[name].get(key, none):
                    raise ConfigError(
                        f"config key {where}.retrain.mode: finetune keeps the architecture of {base!r}, whose {key} "
                        f"differs from that of {name!r}; give the two the same {key}, or use mode: scratch"
                    )


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a YAML configuration file and validate it (see :func:`validate_config`); a config without a
    ``campaign`` is named after the file (:func:`with_campaign`)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"configuration file {path} does not exist")
    with path.open() as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, found {type(raw).__name__}")
    return validate_config(with_campaign(raw, path))


def material_block(path: str | Path) -> dict[str, Any]:
    """The validated ``material`` block of a configuration file, for command lines given ``--config``."""
    return load_config(path)["material"]
