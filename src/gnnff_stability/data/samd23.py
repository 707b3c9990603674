"""The SAMD23 HfO DFT set (Kim et al. 2023), the paper's data: read from the unpacked ``HfO.tar``.

``Trainset.xyz``, ``Validset.xyz``, ``Testset.xyz`` (and ``OOD.xyz``); their split is kept.
"""

from __future__ import annotations

import logging
import tarfile
from collections.abc import Collection
from pathlib import Path

from ase import Atoms

from .extxyz import read_labelled_frames

__all__ = ["SAMD23_FILES", "SAMD23_OOD_FILE", "SAMD23_SOURCE", "read_samd23"]

logger = logging.getLogger(__name__)

#: How ``meta.json`` names the source.
SAMD23_SOURCE = "SAMD23 HfO DFT set (Kim et al., NeurIPS Datasets and Benchmarks 2023)"
#: SAMD23 split files.
SAMD23_FILES = {"train": "Trainset.xyz", "valid": "Validset.xyz", "test": "Testset.xyz"}
SAMD23_OOD_FILE = "OOD.xyz"


def _samd23_root(samd23_dir: Path) -> Path:
    """The folder with the split files: ``samd23_dir/HfO`` (nequip's layout) or ``samd23_dir`` itself."""
    for root in (samd23_dir / "HfO", samd23_dir):
        if all((root / f).is_file() for f in SAMD23_FILES.values()):
            return root
    archive = samd23_dir / "HfO.tar"
    if archive.is_file():
        logger.info("unpacking %s into %s", archive, samd23_dir)
        with tarfile.open(archive, "r:") as tar:
            tar.extractall(samd23_dir, filter="data")
        for root in (samd23_dir / "HfO", samd23_dir):
            if all((root / f).is_file() for f in SAMD23_FILES.values()):
                return root
    root = samd23_dir / "HfO" if (samd23_dir / "HfO").is_dir() else samd23_dir
    missing = [f for f in SAMD23_FILES.values() if not (root / f).is_file()]
    raise FileNotFoundError(
        f"SAMD23 HfO files missing in {root}: {missing} (looked in {samd23_dir / 'HfO'} and {samd23_dir}). "
        "They come from HfO.tar of the SAMD23 benchmark (Kim et al. 2023), which "
        "nequip.data.datamodule.SAMD23DataModule downloads from Google Drive with gdown; download it "
        f"and unpack it into {samd23_dir} (tar xf HfO.tar -C {samd23_dir}), or put HfO.tar there."
    )


def read_samd23(samd23_dir: str | Path, species: Collection[str]) -> dict[str, list[Atoms]]:
    """Read the SAMD23 HfO split files, normalising labels to ``energy`` and ``forces``.

    Parameters
    ----------
    samd23_dir
        Folder holding ``HfO/Trainset.xyz`` etc. (the ``data_source_dir`` of nequip's
        ``SAMD23DataModule``), the files directly, or ``HfO.tar`` (unpacked here).
    species
        The campaign's species (``material.species``); a frame with another species is an error
        (SAMD23 holds Hf and O only).

    Returns
    -------
    dict
        ``train``, ``valid``, ``test`` and, if ``OOD.xyz`` exists, ``ood``: lists of frames with a
        ``SinglePointCalculator`` holding energy (eV) and forces (eV/Å).
    """
    root = _samd23_root(Path(samd23_dir))
    files = dict(SAMD23_FILES)
    if (root / SAMD23_OOD_FILE).is_file():
        files["ood"] = SAMD23_OOD_FILE
    out = {}
    for split, name in files.items():
        out[split] = read_labelled_frames(root / name, species)
        logger.info("read %d frames from %s", len(out[split]), root / name)
    return out


