"""validate_config is the one gate: each settings class mirrors its schema block key for key, and the
rules that span keys are refused there, naming the key, before any job starts."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from pathlib import Path

import pytest
import yaml

from gnnff_stability import settings
from gnnff_stability.config import ConfigError, load_schema, validate_config

REPO = Path(__file__).resolve().parents[2]


def _block(path: str) -> dict:
    # `<name>` stands for any key of a keyed block (methods.<name>); a block that may be null is its object branch
    node = load_schema()
    for key in path.split("."):
        node = node["additionalProperties"] if key == "<name>" else node["properties"][key]
        if "properties" not in node and "oneOf" in node:
            node = next(branch for branch in node["oneOf"] if branch.get("type") == "object")
    return node


def _sections():
    return [cls for _, cls in inspect.getmembers(settings, inspect.isclass)
            if dataclasses.is_dataclass(cls) and getattr(cls, "block", "")]


def test_there_are_settings_classes_to_check():
    blocks = {cls.block for cls in _sections()}
    assert {"data", "data.comb", "md", "md.hpc", "refmd", "training", "stability", "rdf"} <= blocks


@pytest.mark.parametrize("cls", _sections(), ids=lambda c: c.__name__)
def test_each_settings_class_has_exactly_the_keys_of_its_schema_block(cls):
    fields = {f.name for f in dataclasses.fields(cls)}
    assert fields == set(_block(cls.block)["properties"]), cls.block


def test_the_method_and_corr_classes_have_the_keys_of_their_blocks():
    method = load_schema()["properties"]["methods"]["additionalProperties"]
    assert {f.name for f in dataclasses.fields(settings.MethodPreset)} - {"name"} == set(method["properties"])
    corr = set(method["properties"]["corr"]["oneOf"][1]["properties"])
    # the per-family feature selections become the one selection of the run's family
    assert {f.name for f in dataclasses.fields(settings.CorrSettings)} == corr - {"features"} | {"selection"}


@pytest.fixture
def tiny() -> dict:
    return yaml.safe_load((REPO / "config" / "test.yaml").read_text())


def _refused(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return str(info.value)


def test_refmd_thermo_interval_must_divide_its_dump_interval(tiny):
    config = copy.deepcopy(tiny)
    config.setdefault("refmd", {}).update(enabled=True, thermo_every=30, dump_every=100, steps=2000)
    message = _refused(config)
    assert message.startswith("config key refmd.thermo_every: 30 must divide refmd.dump_every (100)")
    assert "md.thermo_every" not in message.replace("refmd.thermo_every", "")
    config["refmd"]["thermo_every"] = 25  # 100 = 4 x 25
    assert validate_config(config)["refmd"]["thermo_every"] == 25
    config["refmd"].update(thermo_every=30, enabled=False)  # not run: not checked
    validate_config(config)


def test_refmd_must_reach_one_snapshot(tiny):
    config = copy.deepcopy(tiny)
    config.setdefault("refmd", {}).update(enabled=True, thermo_every=10, dump_every=100, steps=50)
    assert _refused(config).startswith("config key refmd.steps: 50 is shorter than one snapshot interval")


@pytest.mark.parametrize(("n_frames", "split", "n_train"), [
    # valid and test get round(f n) frames, at least one each; train the rest (counted by hand)
    (10, [0.8, 0.1, 0.1], 8),
    (10, [0.1, 0.5, 0.4], 1),
    (12, [0.0, 0.5, 0.5], 0),
    (10, [0.98, 0.01, 0.01], 8),  # 0.1 frame rounds to 0, but valid and test keep one each
    (10, [0.0, 0.95, 0.05], -1),  # 10 - round(9.5) - max(1, round(0.5)) = 10 - 10 - 1
])
def test_a_split_that_leaves_no_training_frame_is_refused(tiny, n_frames, split, n_train):
    config = copy.deepcopy(tiny)
    config["data"] = {"source": "comb", "split": split, "comb": {"n_frames": n_frames}}
    if n_train >= 1:
        assert validate_config(config)["data"]["split"] == split
        return
    message = _refused(config)
    assert message.startswith(f"config key data.comb.n_frames: {n_frames} frames are too few for data.split")
    assert f"train would get {n_train}" in message


def test_samd23_keeps_its_own_split(tiny):
    config = copy.deepcopy(tiny)
    config["data"] = {"source": "samd23", "split": [0.0, 0.5, 0.5], "comb": {"n_frames": 10}}
    validate_config(config)  # the comb frame count is not used: nothing to refuse


def test_the_smallest_comb_set_still_trains(tiny):
    """data.comb.n_frames' schema minimum (10) with the default split gives 8 / 1 / 1 frames."""
    config = copy.deepcopy(tiny)
    config["data"] = {"source": "comb", "comb": {"n_frames": 10}}
    assert validate_config(config)["data"]["comb"]["n_frames"] == 10


def test_the_split_sum_is_checked_once_in_the_gate(tiny):
    config = copy.deepcopy(tiny)
    config["data"] = {"split": [0.8, 0.1, 0.2]}
    assert _refused(config) == "config key data.split: fractions [0.8, 0.1, 0.2] must sum to 1"


def test_no_job_validates_again():
    """validate_config runs once, in the workflow's common.smk (or load_config): no library module and no
    job script calls it, and the library takes only typed settings (no partial-block conveniences)."""
    offenders = []
    for path in [*(REPO / "src" / "gnnff_stability").rglob("*.py"), *(REPO / "scripts").glob("*.py")]:
        if path.name == "config.py" and path.parent.name == "gnnff_stability":
            continue
        text = path.read_text()
        for needle in ("validate_config(", "load_config(", ".from_partial(", ".coerce(", "section("):
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []


def test_md_does_not_import_train_and_only_proc_spawns_processes():
    import ast

    for path in (REPO / "src" / "gnnff_stability").rglob("*.py"):
        tree = ast.parse(path.read_text())
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        where = path.relative_to(REPO / "src")
        if path.parent.name == "md":
            assert not any(m.startswith("gnnff_stability.train") for m in modules), where
        if path.name != "proc.py":
            assert "subprocess" not in modules, where
