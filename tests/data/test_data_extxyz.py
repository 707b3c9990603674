"""The user's own data (``data.source: extxyz``) on small hand-made extended XYZ files (real files, no mocks)."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from gnnff_stability.config import ConfigError
from partial_settings import block as section
from partial_settings import partial
from gnnff_stability.data.extxyz import extxyz_species
from gnnff_stability.data.reference import make_reference_data
from gnnff_stability.settings import DataSettings


def _frames(n, seed, key="energy", symbols="Hf4O8"):
    """n labelled 12-atom frames; energies -100 - seed*100 - i tell each frame apart."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        atoms = Atoms(symbols, positions=rng.uniform(0, 5, (12, 3)), cell=np.eye(3) * 5.0, pbc=True)
        atoms.calc = SinglePointCalculator(atoms, **{key: -100.0 - seed * 100 - i},
                                           forces=rng.normal(0, 1, (12, 3)))
        out.append(atoms)
    return out


def _energies(path):
    return sorted(a.get_potential_energy() for a in ase.io.read(path, index=":"))


def _data(tmp_path, **extxyz):
    return partial(DataSettings, {"source": "extxyz", "extxyz": extxyz, "split": [0.6, 0.2, 0.2], "seed": 3})


def test_species_scan_agrees_with_ase(tmp_path):
    # ase puts species first; a hand-written file puts it after the positions, and its second frame adds Si
    path = tmp_path / "mixed.xyz"
    path.write_text(
        "2\nProperties=pos:R:3:species:S:1:forces:R:3 energy=-1.0 pbc=\"F F F\"\n"
        "0 0 0 Hf 0 0 0\n1.9 0 0 O 0 0 0\n"
        "3\nProperties=pos:R:3:species:S:1:forces:R:3 energy=-2.0 pbc=\"F F F\"\n"
        "0 0 0 O 0 0 0\n2 0 0 Si 0 0 0\n0 2 0 Hf 0 0 0\n"
    )
    assert extxyz_species(path) == {"Hf": 0, "O": 0, "Si": 1}
    by_ase = [set(a.get_chemical_symbols()) for a in ase.io.read(path, index=":")]
    assert by_ase == [{"Hf", "O"}, {"O", "Si", "Hf"}]
    written = tmp_path / "ase.xyz"
    ase.io.write(written, _frames(2, 0) + _frames(1, 1, symbols="Hf4O7Zr"), format="extxyz")
    assert extxyz_species(written) == {"Hf": 0, "O": 0, "Zr": 2}


def test_species_scan_refuses_a_truncated_file(tmp_path):
    path = tmp_path / "cut.xyz"
    path.write_text("3\ncomment\nHf 0 0 0\nO 1 0 0\n")
    with pytest.raises(ValueError, match="ends inside the frame"):
        extxyz_species(path)


def test_one_file_is_split(tmp_path, hfo2):
    ase.io.write(tmp_path / "all_my_dft.extxyz", _frames(10, 0, key="free_energy"), format="extxyz")
    out = {k: tmp_path / f"{k}.xyz" for k in ("train", "valid", "test")}
    meta = make_reference_data(
        _data(tmp_path, file=str(tmp_path / "all_my_dft.extxyz"), name="PBE, VASP 6, my HfO2 set"), hfo2,
        out["train"], out["valid"], out["test"], tmp_path / "meta.json",
    )
    assert meta["counts"] == {"train": 6, "valid": 2, "test": 2}
    # every frame lands in exactly one split, labels intact (free_energy read as the energy)
    assert sorted(_energies(out["train"]) + _energies(out["valid"]) + _energies(out["test"])) == \
        sorted(-100.0 - i for i in range(10))
    on_disk = json.loads((tmp_path / "meta.json").read_text())
    assert on_disk["source"] == "PBE, VASP 6, my HfO2 set" and on_disk["source_key"] == "extxyz"
    assert "SAMD23" not in json.dumps(on_disk)
    # the same seed gives the same split
    again = {k: tmp_path / f"again_{k}.xyz" for k in ("train", "valid", "test")}
    make_reference_data(_data(tmp_path, file=str(tmp_path / "all_my_dft.extxyz")), hfo2,
                        again["train"], again["valid"], again["test"], tmp_path / "meta2.json")
    assert _energies(again["test"]) == _energies(out["test"])


def test_three_files_are_kept(tmp_path, hfo2):
    names = {"train": "a.xyz", "valid": "b.xyz", "test": "c.xyz"}
    for seed, (_role, name) in enumerate(names.items()):
        ase.io.write(tmp_path / name, _frames(3 + seed, seed), format="extxyz")
    out = {k: tmp_path / f"out_{k}.xyz" for k in names}
    meta = make_reference_data(_data(tmp_path, **{k: str(tmp_path / v) for k, v in names.items()}), hfo2,
                               out["train"], out["valid"], out["test"], tmp_path / "meta.json")
    assert meta["counts"] == {"train": 3, "valid": 4, "test": 5}
    for seed, role in enumerate(names):
        assert _energies(out[role]) == sorted(-100.0 - seed * 100 - i for i in range(3 + seed))
    assert meta["source"] == "user-supplied extended XYZ"


def test_config_refuses_a_foreign_species_before_any_work(tmp_path):
    ase.io.write(tmp_path / "good.xyz", _frames(2, 0), format="extxyz")
    ase.io.write(tmp_path / "bad.xyz", _frames(3, 1) + _frames(1, 2, symbols="Hf4O7Si"), format="extxyz")
    block = {"source": "extxyz", "extxyz": {"train": str(tmp_path / "good.xyz"), "valid": str(tmp_path / "good.xyz"),
                                            "test": str(tmp_path / "bad.xyz")}}
    with pytest.raises(ConfigError, match=r"data\.extxyz\.test: .*bad\.xyz holds species Si \(first in frame 3\)"
                                          r".*species are Hf, O"):
        section("data", block)
    block["extxyz"]["test"] = str(tmp_path / "good.xyz")
    assert section("data", block)["extxyz"]["test"].endswith("good.xyz")


@pytest.mark.parametrize("given, found", [
    ({}, "no file"),
    ({"train": "x.xyz", "valid": "y.xyz"}, "train, valid"),
    ({"file": "x.xyz", "test": "y.xyz"}, "file, test"),
])
def test_config_refuses_an_incomplete_layout(given, found):
    with pytest.raises(ConfigError, match=rf"data\.extxyz: found {found}; give either `file`"):
        section("data", {"source": "extxyz", "extxyz": given})


def test_config_refuses_a_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"data\.extxyz\.file: file '.*nowhere\.xyz' does not exist"):
        section("data", {"source": "extxyz", "extxyz": {"file": str(tmp_path / "nowhere.xyz")}})


def test_other_sources_ignore_the_block():
    assert section("data", {"source": "comb", "extxyz": {"train": "not/checked.xyz"}})["source"] == "comb"


def test_frames_must_hold_the_materials_species(tmp_path, sic):
    """The species allowed come from the material: HfO2 frames are refused for a SiC campaign."""
    ase.io.write(tmp_path / "hfo2.xyz", _frames(5, 0), format="extxyz")
    settings = _data(tmp_path, file=str(tmp_path / "hfo2.xyz"))
    out = [tmp_path / f for f in ("a.xyz", "b.xyz", "c.xyz", "meta.json")]
    with pytest.raises(ValueError, match=r"species \['Hf', 'O'\] are not in \['Si', 'C'\]"):
        make_reference_data(settings, sic, *out)
