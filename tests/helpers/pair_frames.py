"""Hf/O frames labelled by a known enveloped Morse pair potential (numpy + ASE), and nequip batches of them."""

from __future__ import annotations

import ase
import numpy as np
from ase.neighborlist import neighbor_list

TYPES = ["Hf", "O"]

# Morse pair potential V(r) = D [(1 - exp(-a (r - r0)))^2 - 1] per species pair (eV, 1/Å, Å)
MORSE = {
    ("Hf", "Hf"): (0.6, 1.4, 2.6),
    ("Hf", "O"): (1.5, 1.8, 2.05),
    ("O", "O"): (0.4, 2.0, 2.3),
}
SHIFTS = {"Hf": -3.0, "O": -1.0}  # per-atom energy offsets of the labels (eV)
R_CUT = 3.0  # Å
P_CUT = 6


def envelope(r: np.ndarray, r_cut: float = R_CUT, p: int = P_CUT) -> tuple[np.ndarray, np.ndarray]:
    """The DimeNet polynomial envelope u(x), x = r / r_cut, and du/dr (zero beyond r_cut)."""
    x = r / r_cut
    u = 1 - (p + 1) * (p + 2) / 2 * x**p + p * (p + 2) * x ** (p + 1) - p * (p + 1) / 2 * x ** (p + 2)
    du = (-(p + 1) * (p + 2) / 2 * p * x ** (p - 1) + p * (p + 2) * (p + 1) * x**p
          - p * (p + 1) / 2 * (p + 2) * x ** (p + 1)) / r_cut
    inside = x < 1
    return u * inside, du * inside


def morse(r: np.ndarray, pair: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """V(r) and dV/dr of the bare Morse term of a species pair (either order)."""
    d, a, r0 = MORSE[pair] if pair in MORSE else MORSE[pair[::-1]]
    ex = np.exp(-a * (r - r0))
    return d * ((1 - ex) ** 2 - 1), 2 * d * a * (1 - ex) * ex


def pair_curve(r: np.ndarray, pair: tuple[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The labelling potential V(r) u(r) and its derivative, per species pair."""
    v, dv = morse(r, pair)
    u, du = envelope(r)
    return v * u, dv * u + v * du


def label(atoms: ase.Atoms) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å) of the enveloped Morse pair potential plus per-atom offsets."""
    i, j, d, D = neighbor_list("ijdD", atoms, R_CUT)
    sym = np.array(atoms.get_chemical_symbols())
    energy = sum(SHIFTS[s] for s in sym)
    forces = np.zeros((len(atoms), 3))
    for pair in [("Hf", "Hf"), ("Hf", "O"), ("O", "O")]:
        mask = ((sym[i] == pair[0]) & (sym[j] == pair[1])) | ((sym[i] == pair[1]) & (sym[j] == pair[0]))
        v, dv = pair_curve(d[mask], pair)
        energy += 0.5 * v.sum()  # each pair appears as i-j and j-i
        # dE/dr_j from the directed pair (i, j): 1/2 dV/dr * D/|D| on j, opposite on i; both directions
        f = (dv / d[mask])[:, None] * D[mask]
        np.add.at(forces, i[mask], f)  # -dE/dr_i = + dV/dr * (r_j - r_i)/r  (the 1/2 twice)
    return float(energy), forces


def random_frames(n_frames: int, seed: int, n_atoms=(6, 10), box=5.2, d_min=1.6) -> list[ase.Atoms]:
    """Random periodic Hf/O cells (varying composition, pair distances spread over [d_min, ...]), labelled."""
    rng = np.random.default_rng(seed)
    frames = []
    while len(frames) < n_frames:
        n = int(rng.integers(n_atoms[0], n_atoms[1] + 1))
        cell = np.diag(box * (1 + rng.normal(0, 0.03, 3)))
        symbols = list(rng.choice(TYPES, size=n, p=[0.4, 0.6]))
        if len(set(symbols)) < 2:
            continue
        atoms = ase.Atoms(symbols, cell=cell, pbc=True)
        pos = []
        for _ in range(n):
            for _attempt in range(200):
                trial = rng.random(3) @ cell
                probe = ase.Atoms("H" * (len(pos) + 1), positions=pos + [trial], cell=cell, pbc=True)
                if len(pos) == 0 or np.min(probe.get_distances(len(pos), range(len(pos)), mic=True)) > d_min:
                    pos.append(trial)
                    break
        if len(pos) < n:
            continue
        atoms.positions = np.array(pos)
        energy, forces = label(atoms)
        atoms.info["energy"] = energy
        atoms.arrays["forces"] = forces
        frames.append(atoms)
    return frames


def to_batch(frames, r_max: float):
    """nequip AtomicDataDict batch of ASE frames with a neighbour list of radius r_max."""
    from nequip.data import AtomicDataDict

    from gnnff_stability.models.prefit import frames_to_data

    return AtomicDataDict.batched_from_list(frames_to_data(frames, TYPES, r_max))
