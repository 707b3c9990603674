"""Small real nequip models and HfO2 cells for the MD stage's tests and benchmarks.

Nothing here is used by the campaign itself. The helpers build, in seconds to a minute, what the MD
engines consume in production: a ``model.nequip.zip`` written by ``nequip-package`` from a checkpoint
that ``nequip-train`` produced, and a LAMMPS data file of an HfO2 cell.

The training labels come from a smooth species-dependent Morse pair potential (:func:`morse_labels`),
evaluated here with numpy, so no reference-potential run is needed. The fitted model is a real
NequIP/Allegro model; it is only as good as a few epochs on a few dozen frames make it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

__all__ = [
    "MORSE_PARAMS",
    "PLUGIN_ENV",
    "build_toy_package",
    "fluorite_hfo2",
    "morse_labels",
    "toy_dataset",
    "toy_train_config",
    "write_lammps_cell",
]

logger = logging.getLogger(__name__)

#: Morse parameters (D0 eV, alpha 1/Å, r0 Å) of the toy labelling potential, per species pair.
MORSE_PARAMS: dict[tuple[str, str], tuple[float, float, float]] = {
    ("Hf", "O"): (1.2, 1.6, 2.12),
    ("O", "O"): (0.08, 1.4, 2.9),
    ("Hf", "Hf"): (0.25, 1.2, 3.55),
}
_MORSE_CUTOFF_A = 6.0

#: Environment variable naming a LAMMPS plugin with ``pair_style nequip`` / ``allegro`` (the shared
#: library), read by the tests and benchmarks that run the real pair styles.
PLUGIN_ENV = "GNNFF_LAMMPS_PLUGIN"


def fluorite_hfo2(repeat: tuple[int, int, int] = (1, 1, 1), a_A: float = 5.08) -> Atoms:
    """Cubic fluorite HfO2 (Fm-3m), 12 atoms per conventional cell, Hf first.

    Parameters
    ----------
    repeat
        Supercell repetitions along a, b, c.
    a_A
        Cubic lattice constant, Å.
    """
    hf = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    o = np.array([[x, y, z] for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)])
    atoms = Atoms(
        symbols=["Hf"] * 4 + ["O"] * 8,
        scaled_positions=np.vstack([hf, o]),
        cell=np.eye(3) * a_A,
        pbc=True,
    )
    atoms = atoms.repeat(repeat)
    order = np.argsort([0 if s == "Hf" else 1 for s in atoms.get_chemical_symbols()], kind="stable")
    return atoms[order]


def morse_labels(atoms: Atoms) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (shape [N, 3], eV/Å) of the toy Morse pair potential.

    Each pair within 6 Å contributes ``D0 [(1 - exp(-alpha (r - r0)))^2 - 1]`` with the parameters of
    :data:`MORSE_PARAMS` for its species pair.
    """
    from matscipy.neighbours import neighbour_list  # noqa: PLC0415

    i, j, d, vec = neighbour_list("ijdD", atoms, _MORSE_CUTOFF_A)
    sym = np.array(atoms.get_chemical_symbols())
    params = np.zeros((i.size, 3))
    for (a, b), p in MORSE_PARAMS.items():
        mask = ((sym[i] == a) & (sym[j] == b)) | ((sym[i] == b) & (sym[j] == a))
        params[mask] = p
    d0, alpha, r0 = params.T
    ex = np.exp(-alpha * (d - r0))
    energy = 0.5 * float(np.sum(d0 * ((1 - ex) ** 2 - 1)))
    dedr = 2 * d0 * alpha * ex * (1 - ex)
    fpair = (dedr / d)[:, None] * vec  # dE/dr * r_hat, vec = r_j - r_i
    forces = np.zeros((len(atoms), 3))
    np.add.at(forces, i, fpair)
    return energy, forces


def toy_dataset(
    n_frames: int, seed: int, repeat: tuple[int, int, int] = (1, 1, 1)
) -> list[Atoms]:
    """Rattled, strained fluorite HfO2 frames labelled with :func:`morse_labels`.

    Parameters
    ----------
    n_frames
        Number of frames.
    seed
        Seed of the displacements and strains.
    repeat
        Supercell of the 12-atom conventional cell.
    """
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        atoms = fluorite_hfo2(repeat)
        strain = np.eye(3) + rng.normal(0.0, 0.02, (3, 3))
        atoms.set_cell(atoms.cell @ strain, scale_atoms=True)
        atoms.positions += rng.normal(0.0, rng.uniform(0.03, 0.15), atoms.positions.shape)
        energy, forces = morse_labels(atoms)
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        frames.append(atoms)
    return frames


def write_lammps_cell(atoms: Atoms, path: str | Path) -> Path:
    """Write a LAMMPS data file (atom_style atomic, type 1 Hf, type 2 O, masses section)."""
    from ase.io import write  # noqa: PLC0415

    path = Path(path)
    write(path, atoms, format="lammps-data", specorder=["Hf", "O"], masses=True, atom_style="atomic")
    return path


def toy_train_config(
    data_path: str | Path,
    family: str = "nequip",
    num_layers: int = 2,
    l_max: int = 1,
    num_features: int = 8,
    r_max: float = 4.0,
    max_epochs: int = 2,
    seed: int = 0,
    model_dtype: str = "float32",
    n_train: int = 16,
    n_val: int = 4,
    batch_size: int = 2,
    lr: float = 0.01,
    zbl: bool = False,
) -> dict[str, Any]:
    """A minimal ``nequip-train`` Hydra config for the toy data (dict, dump it as YAML).

    ``family`` is ``"nequip"`` (NequIPGNNModel with ``num_features``), ``"allegro"`` (AllegroModel
    with ``num_features`` scalar and ``max(num_features // 2, 2)`` tensor features) or ``"gemnet"``
    (GemNetTModel with ``num_layers`` blocks, ``num_features`` wide atom and edge embeddings and half
    as wide triplet and bilinear embeddings; ``l_max`` is unused). ``zbl`` adds nequip's ZBL core
    repulsion, which keeps a briefly trained model from collapsing pairs of atoms (not for gemnet).
    """
    if family not in ("nequip", "allegro", "gemnet"):
        raise ValueError(f"family must be 'nequip', 'allegro' or 'gemnet', got {family!r}")
    if zbl and family == "gemnet":
        raise ValueError("zbl is not available for the gemnet family")
    model: dict[str, Any] = {
        "seed": seed,
        "model_dtype": model_dtype,
        "type_names": ["Hf", "O"],
        "r_max": float(r_max),
        "l_max": int(l_max),
        "num_layers": int(num_layers),
        "avg_num_neighbors": "${training_data_stats:num_neighbors_mean}",
        "per_type_energy_shifts": "${training_data_stats:per_atom_energy_mean}",
        "per_type_energy_scales": "${training_data_stats:forces_rms}",
    }
    if zbl:
        model["pair_potential"] = {
            "_target_": "nequip.nn.pair_potential.ZBL",
            "units": "metal",
            "chemical_species": ["Hf", "O"],
        }
    if family == "nequip":
        model.update(
            _target_="nequip.model.NequIPGNNModel",
            num_features=int(num_features),
            radial_mlp_depth=1,
            radial_mlp_width=int(num_features),
        )
    elif family == "gemnet":
        del model["l_max"], model["num_layers"]
        half = max(int(num_features) // 2, 2)
        model.update(
            _target_="gnnff_stability.models.gemnet.GemNetTModel",
            num_blocks=int(num_layers),
            emb_size_atom=int(num_features),
            emb_size_edge=int(num_features),
            emb_size_trip=half,
            emb_size_rbf=8,
            emb_size_cbf=8,
            emb_size_bil_trip=half,
        )
    else:
        model.update(
            _target_="allegro.model.AllegroModel",
            radial_chemical_embed={"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 8},
            num_scalar_features=int(num_features),
            num_tensor_features=max(int(num_features) // 2, 2),
            allegro_mlp_hidden_layers_width=int(num_features),
            readout_mlp_hidden_layers_width=int(num_features),
            scalar_embed_mlp_hidden_layers_width=int(num_features),
        )
    transforms = [
        {
            "_target_": "nequip.data.transforms.ChemicalSpeciesToAtomTypeMapper",
            "model_type_names": ["Hf", "O"],
            "chemical_species_to_atom_type_map": {"Hf": "Hf", "O": "O"},
        },
        {"_target_": "nequip.data.transforms.NeighborListTransform", "r_max": float(r_max)},
    ]
    loader = {"_target_": "torch.utils.data.DataLoader", "batch_size": int(batch_size)}
    return {
        "run": ["train"],
        "seed": seed,
        "data": {
            "_target_": "nequip.data.datamodule.NequIPDataModule",
            "seed": seed,
            "split_dataset": {
                "dataset": {
                    "_target_": "nequip.data.dataset.ASEDataset",
                    "file_path": str(data_path),
                    "transforms": transforms,
                },
                "train": n_train,
                "val": n_val,
            },
            "train_dataloader": loader,
            "val_dataloader": loader,
            "stats_manager": {
                "_target_": "nequip.data.CommonDataStatisticsManager",
                "type_names": ["Hf", "O"],
            },
        },
        "trainer": {
            "_target_": "lightning.Trainer",
            "max_epochs": int(max_epochs),
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "logger": False,
            "callbacks": [
                {
                    "_target_": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "dirpath": "${hydra:runtime.output_dir}",
                    "save_last": True,
                }
            ],
        },
        "training_module": {
            "_target_": "nequip.train.NequIPLightningModule",
            "loss": {
                "_target_": "nequip.train.EnergyForceLoss",
                "per_atom_energy": True,
                "coeffs": {"total_energy": 1.0, "forces": 1.0},
            },
            "val_metrics": {
                "_target_": "nequip.train.EnergyForceMetrics",
                "coeffs": {"total_energy_mae": 1.0, "forces_mae": 1.0},
            },
            "optimizer": {"_target_": "torch.optim.Adam", "lr": float(lr)},
            "model": model,
        },
    }


def _nequip_cli(module: str) -> list[str]:
    # ``python -m`` of the console script's module: works without the venv's bin/ on PATH.
    return [sys.executable, "-m", f"nequip.scripts.{module}"]


def build_toy_package(
    workdir: str | Path,
    *,
    family: str = "nequip",
    num_layers: int = 2,
    l_max: int = 1,
    num_features: int = 8,
    r_max: float = 4.0,
    max_epochs: int = 2,
    n_frames: int = 20,
    seed: int = 0,
    model_dtype: str = "float32",
    batch_size: int = 2,
    lr: float = 0.01,
    zbl: bool = False,
    repeat: tuple[int, int, int] = (1, 1, 1),
    compile_ase: bool = False,
) -> Path:
    """Train a toy model with ``nequip-train`` and package it with ``nequip-package``.

    The result is cached in ``workdir`` under a hash of the arguments and the nequip version, so a
    second call with the same arguments returns at once.

    Parameters
    ----------
    workdir
        Directory for the data, the training run and the package.
    family, num_layers, l_max, num_features, r_max, max_epochs, seed, model_dtype, batch_size, lr, zbl
        Model and training settings (see :func:`toy_train_config`).
    n_frames
        Frames of toy data (80 % train, 20 % validation).
    repeat
        Supercell of the 12-atom fluorite cell in each frame.
    compile_ase
        Also run ``nequip-compile --mode aotinductor --target ase`` (1-2 minutes on 2 CPU cores) and
        write ``model.nequip.pt2`` beside the package.

    Returns
    -------
    Path
        ``<workdir>/<hash>/model.nequip.zip``.
    """
    import nequip  # noqa: PLC0415
    import yaml  # noqa: PLC0415
    from ase.io import write  # noqa: PLC0415

    key_src = json.dumps(
        [family, num_layers, l_max, num_features, r_max, max_epochs, n_frames, seed, model_dtype,
         batch_size, lr, zbl, list(repeat), nequip.__version__, 3],
        sort_keys=True,
    )
    key = hashlib.sha1(key_src.encode()).hexdigest()[:12]
    out = Path(workdir) / f"{family}-{key}"
    package = out / "model.nequip.zip"
    compiled = out / "model.nequip.pt2"
    if not package.exists():
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        data_path = out / "toy.xyz"
        write(data_path, toy_dataset(n_frames, seed, tuple(repeat)), format="extxyz")
        n_train = int(round(0.8 * n_frames))
        cfg = toy_train_config(
            data_path, family, num_layers, l_max, num_features, r_max, max_epochs, seed,
            model_dtype, n_train=n_train, n_val=n_frames - n_train, batch_size=batch_size, lr=lr,
            zbl=zbl,
        )
        (out / "toy.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        env = dict(os.environ)
        env.setdefault("HYDRA_FULL_ERROR", "1")
        run_dir = out / "train"
        _run(
            [*_nequip_cli("train"), "-cp", str(out), "-cn", "toy", f"hydra.run.dir={run_dir}"],
            out / "train.log", env,
        )
        tmp = out / "tmp.nequip.zip"
        _run([*_nequip_cli("package"), "build", str(run_dir / "last.ckpt"), str(tmp)],
             out / "package.log", env)
        tmp.rename(package)
    if compile_ase and not compiled.exists():
        from gnnff_stability.train.deploy import compile_model  # noqa: PLC0415

        compile_model(package, compiled, target="ase", device="cpu", threads=2)
    return package


def _run(cmd: list[str], log: Path, env: dict[str, str]) -> None:
    logger.info("running %s", " ".join(cmd))
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, check=False)
    if proc.returncode != 0:
        tail = log.read_text()[-3000:]
        raise RuntimeError(f"{cmd[0]} failed with exit code {proc.returncode}; log {log}:\n{tail}")


def train_from_campaign(family: str, model: dict, method: dict, training: dict, splits: dict,
                        folder: Path, layers: int = 2, method_name: str = "m", threads: int = 2):
    """One ``train_model`` call resolved from a one-model campaign, as the workflow resolves it.

    ``model``, ``method`` and ``training`` are partial config blocks (the schema fills the rest);
    ``splits`` holds the ``train``, ``valid`` and ``test`` files. Returns the metrics.
    """
    from gnnff_stability.config import validate_config  # noqa: PLC0415
    from gnnff_stability.grid import expand_grid, model_presets, training_runs  # noqa: PLC0415
    from gnnff_stability.settings import MaterialSettings, TrainingSettings  # noqa: PLC0415
    from gnnff_stability.train.run import train_model  # noqa: PLC0415

    config = validate_config({
        "grid": {"model": [family], "layers": {family: [layers]}, "method": [method_name]},
        "models": {family: {"family": family, **model}},
        "methods": {method_name: method},
        "training": training,
    })
    run = training_runs(expand_grid(config)).iloc[0].to_dict()
    folder = Path(folder)
    return train_model(
        run, model_presets(config)[family], TrainingSettings.from_config(config["training"]),
        MaterialSettings.from_config(config["material"]), {k: splits[k] for k in ("train", "valid", "test")},
        folder / "run",
        {"model": folder / "model.nequip.zip", "metrics": folder / "metrics.json",
         "epochs": folder / "epochs.csv"},
        threads=threads,
    )
