"""Throughput of the stability evaluator (atom-snapshots per second) from 96 to ~100,000 atoms.

Builds rattled fluorite HfO2 cells of several sizes, writes each as a dump in the contract format,
and times, side by side in one run:

- ``parse``: streaming the dump (:class:`gnnff_stability.analysis.dump.DumpReader`);
- ``rmin``: minimum distances per species pair on the parsed snapshots (neighbour search);
- ``evaluator``: both together, as :func:`gnnff_stability.analysis.stability.score_run` does
  (:func:`gnnff_stability.analysis.stability.snapshot_observables` over the reader).

Linear scaling shows as a roughly constant atom-snapshots/s across sizes (the 96-atom cell is
dominated by per-call overhead). ``--smoke`` runs two small cells once (a check that it runs, in
seconds). Usage::

    .venv/bin/python benchmarks/bench_stability.py [--quick | --smoke]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from gnnff_stability.analysis.dump import DumpReader, Snapshot
from gnnff_stability.analysis.distances import min_pair_distances, snapshot_observables

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # partial_settings, used by the builders
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "analysis"))  # test-data builders
from analysis_builders import PAIR_NAMES, PAIRS, write_dump  # noqa: E402

A = 5.08  # Å, cubic fluorite HfO2


def fluorite(reps: tuple[int, int, int], rng: np.random.Generator, sigma_A: float = 0.08):
    hf = np.array([(0, 0, 0), (0, 0.5, 0.5), (0.5, 0, 0.5), (0.5, 0.5, 0)])
    o = np.array([(x, y, z) for x in (0.25, 0.75) for y in (0.25, 0.75) for z in (0.25, 0.75)])
    basis = np.vstack([hf, o])
    grid = np.array(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij")).reshape(3, -1).T
    frac = (grid[:, None, :] + basis[None, :, :]).reshape(-1, 3)
    types = np.tile([1] * 4 + [2] * 8, len(grid))
    cell = np.diag(np.asarray(reps, dtype=float) * A)
    cell[1, 0] = 0.05 * cell[0, 0]  # slightly triclinic, as LAMMPS cells may be
    pos = frac / np.asarray(reps) @ cell
    return pos, types, cell


def snapshots(reps, n_snap: int, seed: int) -> list[Snapshot]:
    rng = np.random.default_rng(seed)
    pos, types, cell = fluorite(reps, rng)
    out = []
    for k in range(n_snap):
        p = pos + rng.normal(0.0, 0.08, pos.shape)
        out.append(Snapshot(step=100 * k, cell=cell, origin=np.zeros(3),
                            pbc=np.array([True, True, True]), ids=np.arange(1, len(p) + 1),
                            types=types, positions=p, forces=rng.normal(0.0, 1.0, p.shape)))
    return out


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer snapshots, one repeat")
    parser.add_argument("--smoke", action="store_true", help="two small cells, one repeat: checks that it runs")
    args = parser.parse_args(argv)
    sizes = [((2, 2, 2), 200), ((6, 6, 6), 20), ((12, 12, 12), 5), ((20, 20, 21), 3)]
    repeats = 1 if args.quick or args.smoke else 3
    if args.quick:
        sizes = [(r, max(2, n // 4)) for r, n in sizes]
    if args.smoke:
        sizes = [((2, 2, 2), 4), ((3, 3, 3), 2)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for reps, n_snap in sizes:
            snaps = snapshots(reps, n_snap, seed=0)
            n_atoms = snaps[0].n_atoms
            path = Path(tmp) / f"dump_{n_atoms}.lammpstrj"
            write_dump(path, snaps)
            work = n_atoms * n_snap
            t_parse = best_of(lambda path=path: sum(1 for _ in DumpReader(path)), repeats)

            def rmin_all(snaps=snaps):
                hint = None
                for s in snaps:
                    r = min_pair_distances(s.positions, s.types, s.cell, s.pbc, pairs=PAIRS,
                                           start_cutoff_A=None if hint is None else 1.15 * hint + 0.05)
                    hint = r

            t_rmin = best_of(rmin_all, repeats)
            t_eval = best_of(lambda path=path: snapshot_observables(DumpReader(path), pairs=PAIRS, pair_names=PAIR_NAMES), repeats)
            rows.append((n_atoms, n_snap, work / t_parse, work / t_rmin, work / t_eval,
                         t_eval / n_snap))
    print(f"{'atoms':>8} {'snaps':>6} {'parse':>12} {'rmin':>12} {'evaluator':>12} "
          f"{'s/snapshot':>11}   (atom-snapshots/s)")
    for n, k, p, r, e, per in rows:
        print(f"{n:>8d} {k:>6d} {p:>12.3g} {r:>12.3g} {e:>12.3g} {per:>11.4f}")
    base = rows[-2][4]
    print("\nevaluator throughput relative to the", rows[-2][0], "atom cell (1.0 = linear scaling):")
    for n, _, _, _, e, _ in rows:
        print(f"{n:>8d} atoms: {e / base:.2f}")
    n_big, per_big = rows[-1][0], rows[-1][5]
    print(f"\nA 40,000-step run dumped every 100 steps (401 snapshots) of {n_big} atoms scores in "
          f"about {401 * per_big / 60:.1f} min; of 96 atoms in about {401 * rows[0][5]:.1f} s.")


if __name__ == "__main__":
    main()
