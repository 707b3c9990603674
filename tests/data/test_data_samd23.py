"""The SAMD23 reader on small files written in the SAMD23 layout (real extended XYZ, no mocks)."""

from __future__ import annotations

import json
import tarfile

import ase.io
import numpy as np
import pytest
from ase.calculators.singlepoint import SinglePointCalculator

from gnnff_stability.data.reference import make_reference_data
from gnnff_stability.data.samd23 import read_samd23
from gnnff_stability.data.hfo2 import HFO2_SPECIES, monoclinic_hfo2
from gnnff_stability.settings import DataSettings
from partial_settings import partial


def _fake_frames(n, key, seed):
    """n 12-atom HfO2 frames labelled with `key` (energy or free_energy), forces and stress."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        atoms = monoclinic_hfo2((1, 1, 1))
        atoms.positions += rng.normal(0, 0.05, atoms.positions.shape)
        results = {key: -110.0 - i, "forces": rng.normal(0, 1, (12, 3)), "stress": np.zeros(6)}
        atoms.calc = SinglePointCalculator(atoms, **results)
        frames.append(atoms)
    return frames


def _write_layout(folder, with_ood=True):
    """Trainset with free_energy (VASP-style), the others with energy, as in HfO.tar's HfO/ folder."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {
        "Trainset.xyz": _fake_frames(4, "free_energy", 0),
        "Validset.xyz": _fake_frames(2, "energy", 1),
        "Testset.xyz": _fake_frames(3, "energy", 2),
    }
    if with_ood:
        written["OOD.xyz"] = _fake_frames(2, "free_energy", 3)
    for name, frames in written.items():
        ase.io.write(folder / name, frames, format="extxyz")
    return written


def test_reader_normalises_energy_keys(tmp_path):
    written = _write_layout(tmp_path / "samd23" / "HfO")
    splits = read_samd23(tmp_path / "samd23", HFO2_SPECIES)
    assert {k: len(v) for k, v in splits.items()} == {"train": 4, "valid": 2, "test": 3, "ood": 2}
    for split, name in [("train", "Trainset.xyz"), ("test", "Testset.xyz")]:
        for got, ref in zip(splits[split], written[name]):
            key = "free_energy" if name == "Trainset.xyz" else "energy"
            assert got.get_potential_energy() == pytest.approx(ref.calc.results[key])
            np.testing.assert_allclose(got.get_forces(), ref.calc.results["forces"], atol=1e-6)
            assert set(got.calc.results) == {"energy", "forces"}


def test_make_reference_data_from_samd23(tmp_path, hfo2):
    _write_layout(tmp_path / "samd23" / "HfO")
    out = {k: tmp_path / "ref" / f"{k}.xyz" for k in ("train", "valid", "test", "ood")}
    meta = make_reference_data(
        partial(DataSettings, {"source": "samd23", "samd23_dir": str(tmp_path / "samd23"), "seed": 0, "split": [0.8, 0.1, 0.1]}),
        hfo2, out["train"], out["valid"], out["test"], tmp_path / "ref" / "meta.json", ood=out["ood"],
    )
    assert meta["counts"] == {"train": 4, "valid": 2, "test": 3, "ood": 2}
    assert "SAMD23" in json.loads((tmp_path / "ref" / "meta.json").read_text())["source"]
    train = ase.io.read(out["train"], ":")
    assert [a.get_potential_energy() for a in train] == pytest.approx([-110.0, -111.0, -112.0, -113.0])
    header = out["train"].read_text().splitlines()[1]
    assert "energy=" in header and "free_energy" not in header and "forces:R:3" in header


def test_reader_unpacks_the_archive(tmp_path):
    _write_layout(tmp_path / "staging" / "HfO", with_ood=False)
    target = tmp_path / "samd23"
    target.mkdir()
    with tarfile.open(target / "HfO.tar", "w") as tar:
        tar.add(tmp_path / "staging" / "HfO", arcname="HfO")
    splits = read_samd23(target, HFO2_SPECIES)
    assert sorted(splits) == ["test", "train", "valid"]
    assert (target / "HfO" / "Trainset.xyz").is_file()


def test_missing_files_name_their_origin(tmp_path):
    (tmp_path / "samd23" / "HfO").mkdir(parents=True)
    ase.io.write(tmp_path / "samd23" / "HfO" / "Trainset.xyz", _fake_frames(1, "energy", 0))
    with pytest.raises(FileNotFoundError) as info:
        read_samd23(tmp_path / "samd23", HFO2_SPECIES)
    msg = str(info.value)
    for needle in (str(tmp_path / "samd23"), "Validset.xyz", "Testset.xyz", "HfO.tar", "gdown",
                   "SAMD23DataModule"):
        assert needle in msg
    assert "Trainset.xyz'" not in msg.split("missing")[1].split("(")[0]  # present files are not listed
