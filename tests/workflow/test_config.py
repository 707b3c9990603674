"""The configuration schema: every shipped config validates, bad input fails naming the key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from gnnff_stability.config import ConfigError, load_config, load_schema, validate_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "config").glob("*.yaml"))


@pytest.fixture
def tiny() -> dict:
    return yaml.safe_load((REPO / "config" / "test.yaml").read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    config = load_config(path)
    assert config["md"]["dt_fs"] > 0
    assert set(config["grid"]["model"]) <= set(config["models"])


def test_defaults_are_filled(tiny):
    config = validate_config(tiny)
    assert config["stability"] == {"alpha": 1.0, "beta": 0.25, "crash_score": "zero", "temp_term": "raw",
                                   "equil_steps": 0, "ttf_band_K": None}
    assert config["md"]["engine"] == "embedded"
    assert config["methods"]["corr"]["corr"]["c_max"] == 0.1
    assert config["data"]["comb"]["n_frames"] == 20  # given value kept
    assert tiny.get("stability") is None  # input left untouched


def _schema_nodes(node, where="<root>"):
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from _schema_nodes(value, f"{where}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _schema_nodes(value, f"{where}[{i}]")


def test_schema_closed_and_documented():
    for where, node in _schema_nodes(load_schema()):
        assert node.get("additionalProperties") is False, f"{where} accepts unknown keys"
        for key, prop in node["properties"].items():
            assert "description" in prop, f"{where}.{key} has no description"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c.update(bogus=1), ["bogus", "allowed keys"]),
        (lambda c: c["md"].update(stepz=10), ["md", "stepz", "steps"]),
        (lambda c: c["md"].update(engine="gromacs"), ["md.engine", "gromacs", "embedded", "hpc"]),
        (
            lambda c: c["methods"]["corr"]["corr"]["features"].update(nequip="edge_2e"),
            ["methods.corr.corr.features.nequip", "edge_2e", "edge_1o"],
        ),
        (lambda c: c["methods"]["corr"]["corr"].update(scheduler="exp"), ["scheduler", "exp", "cosine"]),
        (lambda c: c["methods"]["corr"]["corr"].update(sample_edges="cube"), ["sample_edges", "cube", "sqrt"]),
        (lambda c: c["grid"].update(method=["baseline", "nope"]), ["grid.method", "nope", "baseline, corr"]),
        (lambda c: c["grid"].update(model=["allegro"]), ["grid.model", "allegro", "nequip"]),
        (lambda c: c["grid"].update(ratio=[2.5]), ["grid.ratio", "2.5", "up to 2 (the undepleted crystal)"]),
        (lambda c: c["md"].update(thermo_every=7), ["md.thermo_every", "7", "divide"]),
        (lambda c: c["models"]["nequip"].update(family="schnet"), ["family", "schnet", "gemnet"]),
        (lambda c: c["data"].update(split=[0.5, 0.1, 0.1]), ["data.split", "sum to 1"]),
        (lambda c: c.setdefault("stability", {}).update(equil_steps=10**6), ["stability.equil_steps", "1000000",
                                                               "leaves no snapshot"]),
        (lambda c: c.setdefault("metrics", {}).update(ramp={"steps": 2000, "rate_K_per_ps": 1000}),
         ["metrics.ramp", "2000", "1000", "not both"]),
        (lambda c: c.setdefault("metrics", {}).update(ramp={"rate_K_per_ps": 1e8}),
         ["metrics.ramp.rate_K_per_ps", "100000000", "at least 10"]),
    ],
)
def test_bad_config_names_key_and_allowed(tiny, mutate, expected):
    config = copy.deepcopy(tiny)
    mutate(config)
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    message = str(info.value)
    for word in expected:
        assert word in message, f"{word!r} not in {message!r}"


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nowhere.yaml"):
        load_config("nowhere.yaml")


def test_model_keys_of_another_family_are_rejected(tiny):
    tiny["models"]["nequip"]["num_scalar_features"] = 16
    with pytest.raises(ConfigError, match=r"models\.nequip: num_scalar_features do not apply to family 'nequip'"):
        validate_config(tiny)


def test_defaults_of_other_families_are_not_filled(tiny):
    preset = validate_config(tiny)["models"]["nequip"]
    assert "num_scalar_features" not in preset and "num_tensor_features" not in preset
    assert preset["parity"] is True  # a default the family reads is filled


def test_key_order_does_not_change_the_config(tiny):
    shuffled = {key: tiny[key] for key in reversed(list(tiny))}
    shuffled["md"] = {key: tiny["md"][key] for key in reversed(list(tiny["md"]))}
    a, b = validate_config(tiny), validate_config(shuffled)
    assert repr(a) == repr(b)
    assert list(a["md"]) == sorted(a["md"])


def test_shipped_configs_name_distinct_campaigns():
    names = {path.stem: load_config(path)["campaign"] for path in CONFIGS}
    assert names["config"] == "demo" and names["study"] == "study" and names["paper"] == "paper"
    assert len(set(names.values())) == len(names)  # no two shipped campaigns share a results root


def test_campaign_defaults_to_the_file_stem(tiny, tmp_path):
    del tiny["campaign"]
    path = tmp_path / "my_scan.yaml"
    path.write_text(yaml.safe_dump(tiny))
    assert load_config(path)["campaign"] == "my_scan"
    tiny["campaign"] = "named"
    path.write_text(yaml.safe_dump(tiny))
    assert load_config(path)["campaign"] == "named"  # a name in the file wins


@pytest.mark.parametrize("bad", ["a/b", "../up", "", "x y"])
def test_campaign_must_be_a_directory_name(tiny, bad):
    tiny["campaign"] = bad
    with pytest.raises(ConfigError, match="campaign"):
        validate_config(tiny)


def test_labels_chgnet_is_the_demo_on_chgnet_labels():
    """config/labels_chgnet.yaml differs from the demo only in its labeller, its grid's models x methods and
    the benchmark metrics; everything a model or a run depends on is the demo's."""
    demo = load_config(REPO / "config" / "config.yaml")
    chgnet = load_config(REPO / "config" / "labels_chgnet.yaml")
    assert chgnet["campaign"] == "labels_chgnet"
    assert demo["data"]["label"] == "comb" and chgnet["data"]["label"] == "chgnet"
    assert {**chgnet["data"], "label": "comb"} == demo["data"]
    for block in ("structures", "models", "training", "md", "refmd", "stability"):
        assert chgnet[block] == demo[block], block
    assert chgnet["methods"] == {m: demo["methods"][m] for m in ("baseline", "corr")}
    assert chgnet["grid"]["model"] == ["nequip", "allegro"] and chgnet["grid"]["method"] == ["baseline", "corr"]
    for key in ("layers", "seed", "ratio", "cell_seed", "temp_K", "vseed"):
        assert chgnet["grid"][key] == demo["grid"][key], key
    assert not chgnet["metrics"]["nve"]["enabled"] and not chgnet["metrics"]["ramp"]["enabled"]
