"""A deployed nequip model as an MD force field: loading, neighbour list, force call.

:func:`load_model` loads a model the way nequip deploys it, either a ``nequip-package`` archive
(``.nequip.zip``, evaluated eagerly) or an AOTInductor artefact from ``nequip-compile --target ase``
(``.nequip.pt2``). :class:`ModelForceField` then evaluates it on raw arrays, without ASE: it keeps
the constant tensors (cell, atom types) between calls and builds the model's input dict
(``pos``, ``edge_index``, ``edge_cell_shift``, ``cell``, ``atom_types``) directly.

Neighbour-list policy
---------------------
:class:`VerletNeighbourList` keeps a list of candidate pairs within ``r_max + skin`` (built by
matscipy, periodic images included) and, at every call, keeps exactly the pairs closer than
``r_max``. It rebuilds the candidates whenever any atom has moved more than ``skin / 2`` since the last
build, when the number or order of atoms changed (LAMMPS sorting, lost atoms), or when positions
were wrapped back into the box (that shows as a jump larger than ``skin / 2``). Two atoms within
``r_max`` now were within ``r_max + skin`` at the last build if neither moved more than ``skin / 2``,
so the model always sees exactly the edges a fresh neighbour list would give it; the skin only saves
work (matscipy costs about 1 ms for 96 atoms, the filter a few tenths of that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "LoadedModel",
    "ModelForceField",
    "VerletNeighbourList",
    "load_model",
]

logger = logging.getLogger(__name__)

#: Neighbour-list skin, Å (see the module docstring).
DEFAULT_SKIN_A = 1.0

# AtomicDataDict keys (the strings nequip uses; written out to keep imports off the hot path).
_POS, _EDGE_INDEX, _ATOM_TYPES, _CELL, _EDGE_SHIFT = (
    "pos", "edge_index", "atom_types", "cell", "edge_cell_shift")
_TOTAL_ENERGY, _FORCES = "total_energy", "forces"

_PACKAGE_SUFFIX = ".nequip.zip"
_COMPILED_SUFFIX = ".nequip.pt2"


@dataclass
class LoadedModel:
    """A model ready for inference.

    Attributes
    ----------
    model
        Callable taking and returning an AtomicDataDict (``dict[str, torch.Tensor]``); a
        ``GraphModel`` for packages, nequip's ``DictInputOutputWrapper`` for compiled models. Tests
        may wrap it (fault injection); it must return ``total_energy`` and ``forces``.
    r_max
        Cutoff radius, Å.
    type_names
        Model type names in model type-index order (for the campaign's models the material's species,
        ``material.species``).
    device
        Device of the model.
    path
        File it was loaded from.
    model_format
        ``"package"`` or ``"compiled"``.
    per_edge_type_cutoff
        nequip's per-edge-type cutoff metadata, or ``None``.
    """

    model: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]
    r_max: float
    type_names: list[str]
    device: torch.device
    path: Path
    model_format: str
    per_edge_type_cutoff: Any = None


def load_model(path: str | Path, model_format: str = "package", device: str = "cpu") -> LoadedModel:
    """Load a deployed nequip model.

    Parameters
    ----------
    path
        ``*.nequip.zip`` (``nequip-package build`` output) for ``model_format="package"``;
        ``*.nequip.pt2`` (``nequip-compile --mode aotinductor --target ase``) for ``"compiled"``.
    model_format
        ``"package"`` or ``"compiled"``.
    device
        ``"cpu"`` or ``"cuda"`` (a compiled model must have been compiled for that device).

    Returns
    -------
    LoadedModel

    Raises
    ------
    ValueError
        Unknown format, or a file whose suffix does not match the format.
    FileNotFoundError
        The file does not exist.
    RuntimeError
        nequip could not load the file (the message names the file and the cause).
    """
    path = Path(path)
    if model_format not in ("package", "compiled"):
        raise ValueError(f"model_format must be 'package' or 'compiled', got {model_format!r}")
    if not path.exists():
        raise FileNotFoundError(f"model file {path} does not exist")
    dev = torch.device(device)
    from nequip.nn import graph_model  # noqa: PLC0415

    if model_format == "package":
        if not path.name.endswith(_PACKAGE_SUFFIX):
            raise ValueError(
                f"model_format 'package' needs a nequip-package file (*{_PACKAGE_SUFFIX}), got {path}"
            )
        from nequip.model.saved_models.load_utils import load_saved_model  # noqa: PLC0415
        from nequip.utils.global_state import set_global_state  # noqa: PLC0415

        set_global_state(allow_tf32=False)
        try:
            model = load_saved_model(str(path), compile_mode="eager")
        except Exception as exc:  # noqa: BLE001 - any failure means the engine cannot start
            raise RuntimeError(f"nequip could not load the packaged model {path}: {exc}") from exc
        model.eval()
        model = model.to(dev)
        meta = model.metadata
        r_max = float(meta[graph_model.R_MAX_KEY])
        type_names = str(meta[graph_model.TYPE_NAMES_KEY]).split(" ")
        cutoffs = meta.get(graph_model.PER_EDGE_TYPE_CUTOFF_KEY, None)
    else:
        if not path.name.endswith(_COMPILED_SUFFIX):
            raise ValueError(
                f"model_format 'compiled' needs a nequip-compile AOTInductor file "
                f"(*{_COMPILED_SUFFIX}), got {path}"
            )
        from nequip.integrations.ase import NequIPCalculator  # noqa: PLC0415
        from nequip.model.inference_models import load_compiled_model  # noqa: PLC0415

        target = NequIPCalculator._get_aoti_compile_target()
        try:
            model, meta = load_compiled_model(
                str(path), dev, list(target["input"]), list(target["output"])
            )
        except Exception as exc:  # noqa: BLE001
            raise RuntimeError(
                f"nequip could not load the compiled model {path} (it must come from nequip-compile "
                f"--mode aotinductor --target ase --device {dev.type}): {exc}"
            ) from exc
        r_max = float(meta[graph_model.R_MAX_KEY])
        type_names = list(meta[graph_model.TYPE_NAMES_KEY])
        cutoffs = meta.get(graph_model.PER_EDGE_TYPE_CUTOFF_KEY, None)
    logger.info("loaded %s model %s: r_max %.3g A, types %s, device %s",
                model_format, path, r_max, type_names, dev)
    return LoadedModel(
        model=model,
        r_max=r_max,
        type_names=type_names,
        device=dev,
        path=path,
        model_format=model_format,
        per_edge_type_cutoff=cutoffs,
    )


class VerletNeighbourList:
    """Periodic neighbour list with a skin, exact at ``r_max`` (see the module docstring).

    Parameters
    ----------
    cell
        Lattice vectors as rows, shape [3, 3], Å.
    pbc
        Periodicity per direction, shape [3].
    r_max
        Model cutoff, Å.
    skin
        Extra distance of the candidate list, Å; 0 rebuilds every call.

    Attributes
    ----------
    n_builds
        Number of candidate-list builds so far.
    """

    def __init__(
        self, cell: np.ndarray, pbc: Sequence[bool], r_max: float, skin: float = DEFAULT_SKIN_A
    ) -> None:
        self.cell = np.ascontiguousarray(cell, dtype=np.float64)
        if self.cell.shape != (3, 3):
            raise ValueError(f"cell must have shape (3, 3), got {self.cell.shape}")
        self.pbc = np.asarray(pbc, dtype=bool)
        if not r_max > 0:
            raise ValueError(f"r_max must be > 0, got {r_max!r}")
        if skin < 0:
            raise ValueError(f"skin must be >= 0 Å, got {skin!r}")
        self.r_max = float(r_max)
        self.skin = float(skin)
        self.n_builds = 0
        self._ref: np.ndarray | None = None
        self._ij = self._i = self._j = None
        self._shift = self._shift_cart = None

    def _build(self, pos: np.ndarray) -> None:
        from matscipy.neighbours import neighbour_list  # noqa: PLC0415

        i, j, shift = neighbour_list(
            "ijS", positions=pos, cell=self.cell, pbc=self.pbc, cutoff=self.r_max + self.skin
        )
        self._ij = np.stack([i, j]).astype(np.int64)
        self._i, self._j = self._ij[0], self._ij[1]
        self._shift = shift.astype(np.float64)
        # Cartesian image offsets, one contiguous array per component (faster filtering).
        self._shift_cart = np.ascontiguousarray((self._shift @ self.cell).T)
        self._ref = pos.copy()
        self.n_builds += 1

    def __call__(self, pos: np.ndarray, force_rebuild: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Edges within ``r_max``.

        Parameters
        ----------
        pos
            Positions, shape [N, 3], Å (any image; they need not be wrapped).
        force_rebuild
            Rebuild the candidates regardless of displacements (e.g. atoms were reordered).

        Returns
        -------
        edge_index, edge_cell_shift
            Shape [2, E] int64 (source = centre ``i``, target = neighbour ``j``) and shape [E, 3]
            float64 integer cell shifts ``S`` such that ``r_ij = pos[j] - pos[i] + S @ cell``.
        """
        if (
            force_rebuild
            or self._ref is None
            or self._ref.shape != pos.shape
            or self.skin == 0.0
            or float(np.max(np.einsum("ij,ij->i", d := pos - self._ref, d), initial=0.0))
            > (0.5 * self.skin) ** 2
        ):
            self._build(pos)
            if self.skin == 0.0:
                return self._ij, self._shift
        # Gather from the transposed positions ([3, N], contiguous rows): about 2x faster than
        # gathering [E, 3] rows.
        pos_t = pos.T.copy()
        vec = np.take(pos_t, self._j, axis=1)
        vec -= np.take(pos_t, self._i, axis=1)
        vec += self._shift_cart
        vec *= vec
        dist2 = vec[0]
        dist2 += vec[1]
        dist2 += vec[2]
        keep = np.flatnonzero(dist2 < self.r_max * self.r_max)
        return self._ij[:, keep], self._shift[keep]


@dataclass
class _Result:
    energy: float
    forces: np.ndarray
    n_edges: int = 0
    extra: dict = field(default_factory=dict)


class ModelForceField:
    """Energy and forces of a loaded model on raw position arrays (the MD hot path).

    Parameters
    ----------
    loaded
        The model (:func:`load_model`).
    cell
        Lattice vectors as rows, shape [3, 3], Å. Fixed for the force field's life (NVT/NVE).
    pbc
        Periodicity per direction, shape [3].
    species
        Chemical symbol of each LAMMPS type, type ``t`` is ``species[t - 1]`` (keyword only, required:
        the material's ``material.species``). The model must know every one.
    skin
        Neighbour-list skin, Å (:class:`VerletNeighbourList`).
    """

    def __init__(
        self,
        loaded: LoadedModel,
        cell: np.ndarray,
        pbc: Sequence[bool] = (True, True, True),
        *,
        species: Sequence[str],
        skin: float = DEFAULT_SKIN_A,
    ) -> None:
        species = [str(s) for s in species]
        if not species:
            raise ValueError("species must name the chemical symbol of every LAMMPS type, got none")
        missing = [s for s in species if s not in loaded.type_names]
        if missing:
            raise ValueError(
                f"model {loaded.path} knows types {loaded.type_names} but the cell needs {list(species)} "
                f"(missing {missing})"
            )
        self.loaded = loaded
        self.device = loaded.device
        self._on_gpu = self.device.type != "cpu"
        # LAMMPS type (1-based) -> model type index; index 0 unused.
        self.type_lut = np.array(
            [-1] + [loaded.type_names.index(s) for s in species], dtype=np.int64
        )
        self.nlist = VerletNeighbourList(cell, pbc, loaded.r_max, skin)
        self._cell = torch.as_tensor(np.asarray(cell, dtype=np.float64)).reshape(1, 3, 3).to(self.device)
        self._types_key: np.ndarray | None = None
        self._atom_types: torch.Tensor | None = None
        self._pruner = None
        if loaded.per_edge_type_cutoff is not None:
            from nequip.data.transforms import NeighborListPruneTransform  # noqa: PLC0415
            from nequip.nn.embedding.utils import cutoff_str_to_fulldict  # noqa: PLC0415

            cutoffs = loaded.per_edge_type_cutoff
            if isinstance(cutoffs, str):
                cutoffs = cutoff_str_to_fulldict(cutoffs, loaded.type_names)
            self._pruner = NeighborListPruneTransform(
                r_max=loaded.r_max, per_edge_type_cutoff=cutoffs, type_names=loaded.type_names
            ).to(self.device)

    def set_types(self, lammps_types: np.ndarray) -> None:
        """Set the LAMMPS type of every atom (shape [N], values 1..n_species), in position order."""
        lammps_types = np.asarray(lammps_types, dtype=np.int64)
        if lammps_types.size and (lammps_types.min() < 1 or lammps_types.max() >= len(self.type_lut)):
            raise ValueError(
                f"LAMMPS types must lie in 1..{len(self.type_lut) - 1}, got "
                f"{sorted(set(lammps_types.tolist()))}"
            )
        self._types_key = lammps_types.copy()
        self._atom_types = torch.from_numpy(self.type_lut[lammps_types]).to(self.device)

    def compute(self, pos: np.ndarray, force_rebuild: bool = False) -> _Result:
        """Energy (eV) and forces (shape [N, 3], eV/Å) at positions ``pos`` (shape [N, 3], Å).

        Call :meth:`set_types` first and again whenever the atoms' number or order changes (then
        pass ``force_rebuild=True``).
        """
        atom_types = self._atom_types
        if atom_types is None or atom_types.shape[0] != pos.shape[0]:
            raise ValueError(
                f"set_types() must be called with {pos.shape[0]} types before compute() "
                f"(have {None if atom_types is None else atom_types.shape[0]})"
            )
        edge_index, shifts = self.nlist(pos, force_rebuild=force_rebuild)
        pos_t = torch.from_numpy(np.array(pos, dtype=np.float64, copy=True))
        # Contiguous inputs: nequip views edge_index flat, and an AOTInductor model reads raw strides.
        edge_t = torch.from_numpy(np.ascontiguousarray(edge_index))
        shift_t = torch.from_numpy(np.ascontiguousarray(shifts))
        if self._on_gpu:
            pos_t, edge_t, shift_t = (t.to(self.device, non_blocking=True)
                                      for t in (pos_t, edge_t, shift_t))
        data = {_POS: pos_t, _EDGE_INDEX: edge_t, _ATOM_TYPES: atom_types, _CELL: self._cell,
                _EDGE_SHIFT: shift_t}
        if self._pruner is not None:
            data = self._pruner(data)
        out = self.loaded.model(data)
        energy = float(out[_TOTAL_ENERGY].detach().reshape(-1)[0])
        forces = out[_FORCES].detach().to("cpu", torch.float64).numpy()
        return _Result(energy=energy, forces=forces, n_edges=int(edge_index.shape[1]))
