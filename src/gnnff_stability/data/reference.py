"""The reference data set of a campaign: train / valid / test extended XYZ and ``meta.json``.

Four sources, selected by ``data.source``: ``comb`` (frames sampled by Langevin MD with the COMB Hf-O
potential in LAMMPS, :mod:`.sampling` and :mod:`.comb`, and labelled by the labeller ``data.label``
names, :mod:`.labellers`: COMB itself, a classical stand-in for DFT, by default), ``reference`` (the same
with the material's pair-style reference potential, e.g. Tersoff for SiC, :mod:`.pair_potential`: labelled
by it, or by ``data.label``'s labeller when that is not the default ``comb``), ``samd23`` (the paper's DFT
set, :mod:`.samd23`) and ``extxyz`` (the user's own labelled files, :mod:`.extxyz`).
Units: Å, eV, eV/Å.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from gnnff_stability.data.splits import split_counts
from gnnff_stability.settings import DataSettings, MaterialSettings

from .extxyz import read_labelled_frames
from .labellers import (
    COMB_LABEL,
    REFERENCE_LABEL,
    comb_provenance,
    label_frames,
    reference_provenance,
    resolve_labeller,
)
from .samd23 import SAMD23_SOURCE, read_samd23
from .sampling import generate_comb_frames

__all__ = ["COMB_SOURCE", "frame_statistics", "make_reference_data", "read_extxyz_source", "reference_source",
           "split_frames", "write_frames"]

logger = logging.getLogger(__name__)

#: How ``meta.json`` names the COMB source.
COMB_SOURCE = "COMB (Shan et al., PRB 81, 125328 (2010)) classical stand-in for DFT"


def split_frames(
    frames: Sequence[Atoms], fractions: Sequence[float], seed: int | np.random.Generator
) -> tuple[list[Atoms], list[Atoms], list[Atoms]]:
    """Shuffle frames with ``seed`` and split them into train / valid / test.

    Valid and test get ``round(fraction * n)`` frames (at least one each), train the rest.

    Parameters
    ----------
    frames
        Frames to split.
    fractions
        Train, valid, test fractions, non-negative, summing to 1.
    seed
        Seed or generator of the shuffle.
    """
    n = len(frames)
    n_train, n_valid, n_test = split_counts(n, fractions)
    if n_train < 1:
        raise ValueError(f"{n} frames are too few for the split {list(fractions)}: train would get {n_train}")
    order = np.random.default_rng(seed).permutation(n)
    picked = [frames[i] for i in order]
    return picked[:n_train], picked[n_train : n_train + n_valid], picked[n_train + n_valid :]


def reference_source(material: MaterialSettings) -> str:
    """How ``meta.json`` names the ``reference`` source: the material and its pair style with its file."""
    ref = material.reference
    return f"{material.name} LAMMPS pair_style {ref.pair_style} ({ref.file}) reference potential"


def read_extxyz_source(
    settings: DataSettings, species: Sequence[str]
) -> tuple[dict[str, list[Atoms]], str]:
    """The user's own frames (``data.source: extxyz``) as train / valid / test, and how they were split.

    One ``data.extxyz.file`` is shuffled and split with ``data.split`` and ``data.seed`` (as the COMB
    frames are); ``train``, ``valid`` and ``test`` files are kept as given. Every frame may hold only
    ``species`` (``material.species``).
    """
    files = settings.extxyz.files
    if set(files) == {"file"}:
        frames = read_labelled_frames(files["file"], species)
        split_rng = np.random.default_rng(np.random.SeedSequence(int(settings.seed)).spawn(2)[1])
        splits = dict(zip(("train", "valid", "test"), split_frames(frames, settings.split, split_rng)))
        return splits, f"one file split {list(settings.split)} with data.seed {settings.seed}"
    if set(files) == {"train", "valid", "test"}:
        splits = {role: read_labelled_frames(files[role], species) for role in ("train", "valid", "test")}
        return splits, "the given train / valid / test files are kept (data.split and data.seed are not used)"
    raise ValueError(f"data.extxyz: give `file` or all of train, valid and test; found {sorted(files) or 'none'}")


def frame_statistics(frames: Sequence[Atoms]) -> dict[str, Any]:
    """Energy and force statistics of labelled frames (eV, eV/atom, eV/Å)."""
    if not frames:
        return {"n_frames": 0}
    n_atoms = np.array([len(a) for a in frames])
    energy = np.array([a.get_potential_energy() for a in frames])
    e_atom = energy / n_atoms
    forces = np.concatenate([a.get_forces() for a in frames])
    norms = np.linalg.norm(forces, axis=1)
    formulas: dict[str, int] = {}
    for a in frames:
        formulas[a.get_chemical_formula()] = formulas.get(a.get_chemical_formula(), 0) + 1
    return {
        "n_frames": len(frames),
        "n_atoms_min": int(n_atoms.min()),
        "n_atoms_max": int(n_atoms.max()),
        "formulas": formulas,
        "energy_eV_min": float(energy.min()),
        "energy_eV_max": float(energy.max()),
        "energy_per_atom_eV_mean": float(e_atom.mean()),
        "energy_per_atom_eV_std": float(e_atom.std()),
        "energy_per_atom_eV_min": float(e_atom.min()),
        "energy_per_atom_eV_max": float(e_atom.max()),
        "force_component_rms_eV_per_A": float(np.sqrt(np.mean(forces**2))),
        "force_norm_mean_eV_per_A": float(norms.mean()),
        "force_norm_max_eV_per_A": float(norms.max()),
        "force_sum_max_eV_per_A": float(max(np.abs(a.get_forces().sum(axis=0)).max() for a in frames)),
    }


def write_frames(frames: Sequence[Atoms], path: str | Path) -> Path:
    """Write labelled frames as extended XYZ (``energy`` in the comment line, ``forces`` per atom)."""
    import ase.io  # noqa: PLC0415

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ase.io.write(path, list(frames), format="extxyz")
    return path


def _frame_provenance(atoms: Atoms) -> dict[str, Any]:
    """Where one frame comes from: the sampling trajectory, its MD step and the labeller."""
    keys = ("phase", "o_per_hf", "ratio", "temp_K", "md_step", "label")
    return {"formula": atoms.get_chemical_formula(), "label": COMB_LABEL} | {
        k: atoms.info[k] for k in keys if k in atoms.info
    }


def make_reference_data(
    settings: DataSettings,
    material: MaterialSettings,
    train: str | Path,
    valid: str | Path,
    test: str | Path,
    meta: str | Path,
    threads: int = 1,
    ood: str | Path | None = None,
) -> dict[str, Any]:
    """Produce the reference data set: train / valid / test extended XYZ and ``meta.json``.

    Parameters
    ----------
    settings
        The ``data`` block.
    material
        The ``material`` block: the species every frame may hold, and the pair-style reference of the
        ``reference`` source.
    train, valid, test
        Extended XYZ outputs (energy in eV, forces in eV/Å).
    meta
        JSON summary: source, settings, counts, energy/force statistics, wall time; for the ``comb`` and
        ``reference`` sources also the labeller (name, version, weights file and SHA-256, labelling time)
        and each frame's provenance (phase and O/Hf or ratio, temperature, MD step, labeller) per split.
    threads
        Worker processes for COMB and reference trajectories. A labeller runs on one torch thread: CHGNet on 96-atom
        frames took 0.64-0.73 s a frame on one thread and 3.2-3.4 s on two while other jobs shared the
        2 cores (docs/data.md); alone, two threads were no faster than one.
    ood
        Optional output for SAMD23's ``OOD.xyz`` frames (written only when the file exists).

    Returns
    -------
    dict
        The content of ``meta.json``.
    """
    t0 = time.perf_counter()
    source = settings.source
    seed = int(settings.seed)
    extra: dict[str, Any] = {}
    if source in ("comb", "reference"):
        # resolved before sampling: a missing package or weights file stops the run at once
        # the default (comb) has the sampler's own potential label its frames
        own = settings.label == COMB_LABEL or (source == "reference" and settings.label == REFERENCE_LABEL)
        labeller = None if own else resolve_labeller(settings.label)
        if source == "comb":
            frames, summary = generate_comb_frames(settings.comb, seed, threads, label=labeller is None)
            own_provenance = comb_provenance(settings.comb.over_coordination, summary) if own else None
            sampler, sampled_by = COMB_SOURCE, "COMB"
        else:
            from .pair_potential import generate_reference_frames  # noqa: PLC0415 (LAMMPS only when asked for)

            frames, summary = generate_reference_frames(material, settings.reference, seed, threads,
                                                        label=labeller is None)
            own_provenance = reference_provenance(material, summary) if own else None
            sampler, sampled_by = reference_source(material), "pair-style"
        if labeller is None:
            extra["labeller"] = own_provenance
            source_text = sampler
        else:
            frames, extra["labeller"] = label_frames(frames, labeller, 1)
            source_text = f"frames sampled by {sampled_by} MD ({sampler}), labelled by {labeller.name}"
        split_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
        splits = dict(zip(("train", "valid", "test"), split_frames(frames, settings.split, split_rng)))
        extra[source] = summary
        extra["frames"] = {k: [_frame_provenance(a) for a in v] for k, v in splits.items()}
    elif source == "samd23":
        splits = read_samd23(settings.samd23_dir, material.species)
        source_text = SAMD23_SOURCE
        extra["samd23_dir"] = str(settings.samd23_dir)
        extra["split_note"] = "the SAMD23 split is kept (data.split and data.seed are not used)"
    elif source == "extxyz":
        splits, extra["split_note"] = read_extxyz_source(settings, material.species)
        source_text = settings.extxyz.name
        extra["extxyz"] = settings.extxyz.files
    else:
        raise ValueError(f"data.source must be 'comb', 'reference', 'samd23' or 'extxyz', got {source!r}")
    outputs = {"train": train, "valid": valid, "test": test}
    if "ood" in splits:
        if ood is not None:
            outputs["ood"] = ood
        else:
            logger.info("%d OOD frames read but not written (no ood output given)", len(splits["ood"]))
    for split, path in outputs.items():
        write_frames(splits[split], path)
        logger.info("wrote %d frames to %s", len(splits[split]), path)
    content = {
        "source": source_text,
        "source_key": source,
        "settings": settings.as_dict(),
        "counts": {k: len(v) for k, v in splits.items()},
        "statistics": {k: frame_statistics(v) for k, v in splits.items()},
        **extra,
        "wall_s": time.perf_counter() - t0,
        "threads": int(threads),
    }
    meta = Path(meta)
    meta.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps(content, indent=2, default=float) + "\n")
    logger.info("reference data (%s): counts %s, %.1f s", source, content["counts"], content["wall_s"])
    return content
