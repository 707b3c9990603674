"""Benchmark of the embedded MD engine: overhead, LAMMPS vs ASE, compiled vs eager.

Prints ratios measured side by side in one run, on one 96-atom HfO2 cell (cubic fluorite 2x2x2,
or ``--cell``):

1. Engine overhead: median wall time per MD step / median model force call on the same cell
   (target <= 1.10 at the embedded default size, NequIP 2 layers, l_max 1, 16 features, r_max 4 Å).
2. LAMMPS embedded engine vs ASE Langevin with nequip's ASE calculator: same model, cell, timestep
   and number of steps; ratio ASE s/step over LAMMPS s/step (>= 1 means LAMMPS is at least as fast).
3. Compiled (nequip-compile --mode aotinductor --target ase) vs eager model call at the paper's sizes
   (NequIP 4 layers, l_max 2, 32 features, r_max 6 Å; Allegro 3 layers, l_max 2, 32 scalar / 16 tensor
   features, r_max 6 Å). Compiling takes 1-2 minutes per model on 2 cores; ``--skip-compile`` skips it.

The models are real nequip models trained for one epoch on toy data (timings do not depend on the
weights) and packaged by nequip-package; they are cached in ``--workdir``.

``--smoke`` runs [1] and [2] for 10 steps, one round, without [3] (a check that it runs; the toy
model is trained once and cached in ``--workdir``).

Usage::

    python benchmarks/bench_md.py [--steps 200] [--threads 2] [--device cpu|cuda] [--skip-compile]
    python benchmarks/bench_md.py --smoke
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from gnnff_stability.md import MDRunFiles, ModelForceField, load_model, run_embedded
from gnnff_stability.settings import MaterialSettings, MDSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the toy-model helpers
from partial_settings import partial  # noqa: E402
from toy_models import build_toy_package, fluorite_hfo2, write_lammps_cell  # noqa: E402

#: The toy cells' material: the schema's default, HfO2.
MATERIAL = partial(MaterialSettings, {})

DEFAULT_SIZE = {"family": "nequip", "num_layers": 2, "l_max": 1, "num_features": 16, "r_max": 4.0}
PAPER_SIZES = {
    "nequip": {"family": "nequip", "num_layers": 4, "l_max": 2, "num_features": 32, "r_max": 6.0},
    "allegro": {"family": "allegro", "num_layers": 3, "l_max": 2, "num_features": 32, "r_max": 6.0},
}
TRAIN = {"max_epochs": 1, "n_frames": 8, "batch_size": 4}


class TimedModel:
    """Model wrapper that records when each force call starts and how long it takes."""

    def __init__(self, model):
        self.model = model
        self.starts: list[float] = []
        self.durations: list[float] = []

    def __call__(self, data):
        t0 = time.perf_counter()
        out = self.model(data)
        if out["forces"].is_cuda:
            torch.cuda.synchronize()
        self.starts.append(t0)
        self.durations.append(time.perf_counter() - t0)
        return out


class ZeroModel:
    """A model that costs nothing: zero energy and forces (measures the engine alone)."""

    def __call__(self, data):
        n = data["pos"].shape[0]
        dev = data["pos"].device
        return {"total_energy": torch.zeros(1, 1, dtype=torch.float64, device=dev),
                "forces": torch.zeros(n, 3, dtype=torch.float64, device=dev)}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def model_call_times(loaded, atoms, n_calls: int, device: str) -> tuple[list[float], int]:
    """Wall times (s) of ``n_calls`` model force calls on one geometry, after two warm-up calls."""
    ff = ModelForceField(loaded, np.array(atoms.cell), [True] * 3, species=MATERIAL.species)
    ff.set_types(np.array([1 if s == "Hf" else 2 for s in atoms.get_chemical_symbols()]))
    edge_index, shifts = ff.nlist(atoms.positions)
    data = {
        "pos": torch.tensor(atoms.positions, dtype=torch.float64, device=device),
        "edge_index": torch.from_numpy(edge_index).to(device),
        "atom_types": ff._atom_types,
        "cell": ff._cell,
        "edge_cell_shift": torch.from_numpy(shifts).to(device),
    }
    times = []
    for k in range(n_calls + 2):
        d = dict(data)
        _sync(device)
        t0 = time.perf_counter()
        loaded.model(d)
        _sync(device)
        if k >= 2:
            times.append(time.perf_counter() - t0)
    return times, int(edge_index.shape[1])


def bench_overhead_and_ase(pkg: Path, cell: Path, atoms, steps: int, device: str, workdir: Path,
                           rounds: int = 3, zero_steps: int = 1000, calls: int = 20):
    loaded = load_model(pkg, "package", device)
    standalone, n_edges = model_call_times(loaded, atoms, max(calls, steps // 5), device)

    timed = TimedModel(loaded.model)
    loaded.model = timed
    settings = partial(MDSettings, {"steps": steps, "dump_every": min(100, steps), "thermo_every": 10,
                                    "device": device})
    out = workdir / "md_default"
    record = run_embedded(loaded, cell, 1200.0, 0, settings, MATERIAL, MDRunFiles.in_dir(out))
    intervals = np.diff(timed.starts[1:])  # skip the set-up call of step 0
    in_run = np.array(timed.durations[1:])
    med_step = float(np.median(intervals))
    print(f"\n[1] engine overhead, NequIP 2L l_max 1 16f r_max 4, 96 atoms, {n_edges} edges, "
          f"{steps} steps, device {device}, torch threads {torch.get_num_threads()}")
    print(f"    median model force call, standalone        {1e3 * statistics.median(standalone):8.2f} ms")
    print(f"    median model force call, inside the MD run {1e3 * np.median(in_run):8.2f} ms")
    print(f"    median wall per MD step                    {1e3 * med_step:8.2f} ms")
    print(f"    MD loop s/step (status.json)               {1e3 * record['s_per_step']:8.2f} ms"
          f"  ({1 / record['s_per_step']:.1f} steps/s)")
    print(f"    overhead = median step / median call (same run)   {med_step / np.median(in_run):.3f}")
    print(f"    overhead = median step / median call (standalone) "
          f"{med_step / statistics.median(standalone):.3f}   (target <= 1.10)")
    print(f"    overhead = MD loop wall / sum of model calls      "
          f"{record['s_per_step'] * record['steps_done'] / in_run.sum():.3f}")

    # Engine cost alone: the same run with a model that costs nothing (returns zero forces).
    zero = dataclasses.replace(loaded, model=ZeroModel())
    out0 = workdir / "md_zero"
    rec0 = run_embedded(zero, cell, 1200.0, 0, dataclasses.replace(settings, steps=max(steps, zero_steps)),
                        MATERIAL, MDRunFiles.in_dir(out0))
    print(f"    engine alone (zero-cost model, {max(steps, zero_steps)} steps)  "
          f"{1e6 * rec0['s_per_step']:8.1f} us/step")

    # [2] ASE Langevin with nequip's calculator, same model, cell, timestep and steps. The two run
    # in alternating rounds so that machine drift hits both alike; both models are timed in place.
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
    from nequip.integrations.ase import NequIPCalculator

    ase_atoms = atoms.copy()
    ase_atoms.set_masses([178.49 if s == "Hf" else 15.999 for s in ase_atoms.get_chemical_symbols()])
    calc = NequIPCalculator._from_saved_model(pkg, device=device,
                                              chemical_species_to_atom_type_map=True)
    ase_atoms.calc = calc
    MaxwellBoltzmannDistribution(ase_atoms, temperature_K=1200, rng=np.random.default_rng(0))
    Stationary(ase_atoms)
    dyn = Langevin(ase_atoms, timestep=0.25 * units.fs, temperature_K=1200,
                   friction=1.0 / (100.0 * units.fs), rng=np.random.default_rng(1))
    stamps: list[float] = []
    dyn.attach(lambda: stamps.append(time.perf_counter()), interval=1)
    dyn.run(2)  # warm-up
    rows = []
    for rnd in range(rounds):
        loaded.model = TimedModel(timed.model)
        out = workdir / f"md_round{rnd}"
        rec = run_embedded(loaded, cell, 1200.0, rnd, settings, MATERIAL, MDRunFiles.in_dir(out))
        lmp_step = float(np.median(np.diff(loaded.model.starts[1:])))
        lmp_call = float(np.median(loaded.model.durations[1:]))
        calc.model = TimedModel(calc.model.model if isinstance(calc.model, TimedModel)
                                else calc.model)
        stamps.clear()
        t0 = time.perf_counter()
        dyn.run(steps)
        ase_mean = (time.perf_counter() - t0) / steps
        ase_step = float(np.median(np.diff(stamps)))
        ase_call = float(np.median(calc.model.durations))
        rows.append((lmp_step, lmp_call, rec["s_per_step"], ase_step, ase_call, ase_mean))
    r = np.array(rows)
    print(f"\n[2] LAMMPS embedded vs ASE Langevin + NequIPCalculator, {rounds} alternating rounds "
          f"of {steps} steps of 0.25 fs (medians over rounds)")
    print("    engine            median step   median model call   step - call   mean s/step")
    for label, k in (("LAMMPS embedded", 0), ("ASE Langevin", 3)):
        step, call, mean = (float(np.median(r[:, k + d])) for d in (0, 1, 2))
        print(f"    {label:16s}  {1e3 * step:9.2f} ms   {1e3 * call:12.2f} ms   "
              f"{1e3 * (step - call):8.2f} ms   {1e3 * mean:8.2f} ms")
    ratios = r[:, 3] / r[:, 0]
    print(f"    ratio ASE / LAMMPS, median step per round: "
          f"{', '.join(f'{x:.3f}' for x in ratios)} -> {np.median(ratios):.3f}   "
          f"(>= 1: LAMMPS at least as fast)")
    print(f"    ratio ASE / LAMMPS, mean s/step: {np.median(r[:, 5] / r[:, 2]):.3f}")


def bench_compile(workdir: Path, cell: Path, atoms, device: str, n_calls: int, md_steps: int,
                  families: list[str]):
    print(f"\n[3] compiled (AOTInductor, --target ase) vs eager, paper sizes, 96 atoms, r_max 6, "
          f"device {device}")
    for name, size in PAPER_SIZES.items():
        if name not in families:
            continue
        t0 = time.perf_counter()
        pkg = build_toy_package(workdir / "models", **size, **TRAIN)
        t_build = time.perf_counter() - t0
        compiled = pkg.with_name("model.nequip.pt2")
        t0 = time.perf_counter()
        try:
            if device == "cpu":
                build_toy_package(workdir / "models", **size, **TRAIN, compile_ase=True)
            else:
                from gnnff_stability.train.deploy import compile_model

                compiled = pkg.with_name(f"model.{device}.nequip.pt2")
                if not compiled.exists():
                    compile_model(pkg, compiled, target="ase", device=device)
        except RuntimeError as exc:
            print(f"    {name}: nequip-compile failed: {exc}"[-1500:])
            continue
        t_compile = time.perf_counter() - t0
        eager = load_model(pkg, "package", device)
        comp = load_model(compiled, "compiled", device)
        t_eager, n_edges = model_call_times(eager, atoms, n_calls, device)
        t_comp, _ = model_call_times(comp, atoms, n_calls, device)
        me, mc = statistics.median(t_eager), statistics.median(t_comp)
        line = (f"    {name:8s} ({n_edges} edges): eager {1e3 * me:9.1f} ms, compiled {1e3 * mc:9.1f} ms"
                f"  -> speed-up {me / mc:.2f}x   (train+package {t_build:.0f} s, compile "
                f"{t_compile:.0f} s incl. cache)")
        print(line)
        if md_steps > 0:
            step_s = {}
            for fmt, lm in (("eager", eager), ("compiled", comp)):
                timed = TimedModel(lm.model)
                out = workdir / f"md_{name}_{fmt}"
                run_embedded(dataclasses.replace(lm, model=timed), cell, 1200.0, 0,
                             partial(MDSettings, {"steps": md_steps, "dump_every": md_steps,
                                                  "thermo_every": 1, "device": device}),
                             MATERIAL, MDRunFiles.in_dir(out))
                step_s[fmt] = float(np.median(np.diff(timed.starts[1:])))
            print(f"             MD, median wall per step over {md_steps} steps: eager "
                  f"{1e3 * step_s['eager']:.1f} ms, compiled {1e3 * step_s['compiled']:.1f} ms -> "
                  f"{step_s['eager'] / step_s['compiled']:.2f}x")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200, help="MD steps of [1] and [2]")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(),
                        help="torch intra-op threads")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of [2]")
    parser.add_argument("--skip-compile", action="store_true", help="skip [3]")
    parser.add_argument("--compile-calls", type=int, default=5, help="model calls timed in [3]")
    parser.add_argument("--compile-md-steps", type=int, default=6,
                        help="MD steps per format in [3] (0: none)")
    parser.add_argument("--compile-families", default="nequip,allegro",
                        help="comma-separated model families of [3]")
    parser.add_argument("--cell", type=Path, default=None,
                        help="LAMMPS data file of a 96-atom cell (default: cubic fluorite 2x2x2)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "gnnff_bench_md",
                        help="cache of the benchmark models and scratch outputs")
    parser.add_argument("--smoke", action="store_true", help="[1] and [2] for 10 steps, one round, no [3]")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.rounds, args.skip_compile = 10, 1, True

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=FutureWarning)
    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.cell is None:
        atoms = fluorite_hfo2((2, 2, 2))
        atoms.rattle(0.02, seed=0)
        cell = write_lammps_cell(atoms, args.workdir / "cell.data")
    else:
        from ase.io import read

        cell = args.cell
        atoms = read(cell, format="lammps-data", atom_style="atomic", Z_of_type={1: 72, 2: 8})
    print(f"bench_md: python {sys.version.split()[0]}, torch {torch.__version__}, "
          f"threads {args.threads}, device {args.device}, cell {cell} ({len(atoms)} atoms)")

    t0 = time.perf_counter()
    pkg = build_toy_package(args.workdir / "models", **DEFAULT_SIZE, **TRAIN)
    print(f"default-size model ready in {time.perf_counter() - t0:.0f} s: {pkg}")
    bench_overhead_and_ase(pkg, cell, atoms, args.steps, args.device, args.workdir, args.rounds,
                           **(dict(zero_steps=10, calls=3) if args.smoke else {}))
    if not args.skip_compile:
        bench_compile(args.workdir, cell, atoms, args.device, args.compile_calls,
                      args.compile_md_steps, args.compile_families.split(","))


if __name__ == "__main__":
    main()
