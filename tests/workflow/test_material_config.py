"""The material block: what a validated configuration derives from it, and the three errors raised before
any job (a species the material lacks in the data, a potential file without a species, a ratio the start
cell cannot be depleted to)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import yaml

from gnnff_stability.config import ConfigError, load_config, validate_config
from gnnff_stability.grid import expand_grid, stoichiometric_ratio_of
from gnnff_stability.settings import MaterialSettings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def tiny() -> dict:
    return yaml.safe_load((REPO / "config" / "test.yaml").read_text())


@pytest.fixture
def sic() -> dict:
    return yaml.safe_load((REPO / "config" / "sic.yaml").read_text())


def test_hfo2_is_the_default_material_and_the_shipped_configs_state_it(tiny):
    default = validate_config({k: v for k, v in tiny.items() if k != "material"})["material"]
    assert default["species"] == ["Hf", "O"] and default["ood"] == {"remove": "O", "per": "Hf"}
    # IUPAC standard atomic weights (ASE's table): Hf 178.49, O 15.999
    assert default["masses"] == {"Hf": 178.49, "O": 15.999}
    for name in ("config.yaml", "paper.yaml", "study.yaml"):
        assert load_config(REPO / "config" / name)["material"] == default, name


def test_sic_material_derives_pairs_masses_and_the_in_distribution_ratio(sic):
    config = validate_config(sic)
    material = MaterialSettings.from_config(config["material"])
    assert material.species == ("Si", "C") and material.type_of == {"Si": 1, "C": 2}
    assert material.pairs == ((1, 1), (1, 2), (2, 2))
    assert material.pair_names == ("SiSi", "SiC", "CC")
    assert material.pair_labels == {"SiSi": "Si–Si", "SiC": "Si–C", "CC": "C–C"}
    assert material.mass_list == (28.085, 12.011)
    assert stoichiometric_ratio_of(config) == 1.0  # zincblende: one C per Si
    runs = expand_grid(config)
    assert sorted(set(runs["ratio"])) == [0.9, 1.0]


def test_masses_given_override_ase(sic):
    sic["material"]["masses"] = {"Si": 28.0}
    assert validate_config(sic)["material"]["masses"] == {"Si": 28.0, "C": 12.011}


def test_species_in_the_data_not_in_the_material_is_rejected(sic, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # a frame with a nitrogen atom, written by hand as extended XYZ
    (tmp_path / "frames.xyz").write_text(
        "2\nLattice=\"5 0 0 0 5 0 0 0 5\" Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 pbc=\"T T T\"\n"
        "Si 0 0 0 0 0 0\nN 1.5 0 0 0 0 0\n"
    )
    sic["data"] = {"source": "extxyz", "extxyz": {"file": "frames.xyz"}}
    with pytest.raises(ConfigError, match=r"data\.extxyz\.file.*species N.*Si, C"):
        validate_config(sic)


def test_a_potential_file_without_a_species_is_rejected(sic):
    # SiC.tersoff has Si and C entries only: a Si-N material cannot use it
    sic["material"]["species"] = ["Si", "N"]
    sic["material"]["ood"] = {"remove": "N", "per": "Si"}
    sic["material"]["structure"]["prototype"] = "zincblende"
    with pytest.raises(ConfigError, match=r"material\.reference\.file: SiC\.tersoff has no entries for species \['N'\]"):
        validate_config(sic)


def test_a_missing_potential_file_is_rejected(sic):
    sic["material"]["reference"]["file"] = "NoSuch.tersoff"
    with pytest.raises(ConfigError, match=r"'NoSuch\.tersoff' is neither a file"):
        validate_config(sic)


@pytest.mark.parametrize(("ratio", "why"), [(1.2, "up to 1 "), (0.01, "from 0.01562")])
def test_a_ratio_the_cell_cannot_be_built_at_is_rejected(sic, ratio, why):
    # 2x2x2 zincblende: 32 Si and 32 C; C/Si above 1 would need more C, 0.01 keeps round(0.32) = 0 C
    assert math.floor(0.01 * 32 + 0.5) == 0
    sic["grid"]["ratio"] = [ratio, 1.0]
    with pytest.raises(ConfigError, match=rf"grid\.ratio: ratio {ratio:g} cannot be built.*32 Si and 32 C.*{why}"):
        validate_config(sic)


def test_hfo2_ratio_above_stoichiometry_is_rejected(tiny):
    tiny["grid"]["ratio"] = [2.5]
    with pytest.raises(ConfigError, match=r"ratio 2\.5 cannot be built.*32 Hf and 64 O.*up to 2 "):
        validate_config(tiny)


def test_ood_species_must_be_the_materials(sic):
    sic["material"]["ood"] = {"remove": "O", "per": "Si"}
    with pytest.raises(ConfigError, match=r"material\.ood\.remove: 'O' is not one of material\.species \['Si', 'C'\]"):
        validate_config(sic)


def test_data_source_must_fit_the_reference(sic):
    sic["data"]["source"] = "comb"
    with pytest.raises(ConfigError, match=r"data\.source: 'comb' samples with a comb reference.*'pair_style'"):
        validate_config(sic)


def test_no_reference_needs_refmd_off(sic, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "frames.xyz").write_text(
        "2\nLattice=\"5 0 0 0 5 0 0 0 5\" Properties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 pbc=\"T T T\"\n"
        "Si 0 0 0 0 0 0\nC 1.9 0 0 0 0 0\n"
    )
    sic["material"]["reference"] = {"kind": "none"}
    sic["data"] = {"source": "extxyz", "extxyz": {"file": "frames.xyz"}}
    with pytest.raises(ConfigError, match=r"refmd\.enabled: the reference MD needs a reference potential"):
        validate_config(sic)
    sic["refmd"]["enabled"] = False
    assert validate_config(sic)["material"]["reference"]["kind"] == "none"
