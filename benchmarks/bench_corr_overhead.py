"""Cost of the correlation loss: seconds per training step, baseline vs corr, side by side.

Both training modules (:class:`gnnff_stability.train.module.CorrLightningModule` with ``corr=None`` and
with the correlation loss) are built from the same config and seed, so they start from identical
weights, and they step on the same pre-collated batches (data loading is left out: it is the same
for both). Each step is what Lightning runs: ``training_step`` (forward with forces, nequip's loss,
plus the sampled correlation penalty), ``backward``, ``Adam.step`` and the EMA update. Blocks of
``--steps`` steps alternate between the two modes (ABBA order) for ``--repeats`` rounds; the
reported ratio is the median over rounds of corr/baseline block times, with the range over rounds
and the ratio of the fastest blocks (the estimate least affected by other load on the machine).
On a shared machine use many short rounds (``--steps 5 --repeats 40``).

Sizes: ``embedded`` (NequIP 2 layers, l_max 1, 16 features, r_max 5 Å; Allegro 2 layers, l_max 1,
16 scalar / 4 tensor) and ``paper`` (NequIP 4 layers, l_max 2, 32 features, r_max 6 Å; Allegro
3 layers, l_max 2, 32 scalar / 16 tensor, r_max 6 Å). Frames: 96-atom monoclinic HfO2 cells
(``--data`` extended XYZ, or rattled cells with synthetic labels, which is all the timing needs).

Usage::

    python benchmarks/bench_corr_overhead.py                     # CPU, both families and sizes
    python benchmarks/bench_corr_overhead.py --device cuda --steps 20 --repeats 10
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np
import torch

SIZES = {
    ("nequip", "embedded"): dict(
        r_max=5.0, model=dict(_target_="nequip.model.NequIPGNNModel", num_layers=2, l_max=1, num_features=16,
                              radial_mlp_depth=2, radial_mlp_width=32, num_bessels=8),
    ),
    ("nequip", "paper"): dict(
        r_max=6.0, model=dict(_target_="nequip.model.NequIPGNNModel", num_layers=4, l_max=2, num_features=32,
                              radial_mlp_depth=2, radial_mlp_width=64, num_bessels=8),
    ),
    ("allegro", "embedded"): dict(
        r_max=5.0, model=dict(
            _target_="allegro.model.AllegroModel", num_layers=2, l_max=1, num_scalar_features=16,
            num_tensor_features=4, scalar_embed_mlp_hidden_layers_width=32, allegro_mlp_hidden_layers_width=32,
            readout_mlp_hidden_layers_width=32,
            radial_chemical_embed={"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 8},
        ),
    ),
    ("allegro", "paper"): dict(
        r_max=6.0, model=dict(
            _target_="allegro.model.AllegroModel", num_layers=3, l_max=2, num_scalar_features=32,
            num_tensor_features=16, scalar_embed_mlp_hidden_layers_depth=3,
            scalar_embed_mlp_hidden_layers_width=32, allegro_mlp_hidden_layers_width=32,
            readout_mlp_hidden_layers_width=32,
            radial_chemical_embed={"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 8},
        ),
    ),
}
TYPES = ["Hf", "O"]


def synthetic_frames(n: int, seed: int):
    """Rattled 96-atom monoclinic HfO2 cells with random (but fixed) labels."""
    from ase.spacegroup import crystal

    rng = np.random.default_rng(seed)
    base = crystal(
        ["Hf", "O", "O"],
        basis=[(0.2758, 0.0411, 0.2082), (0.0703, 0.3359, 0.3406), (0.4423, 0.7549, 0.4789)],
        spacegroup=14, cellpar=[5.117, 5.175, 5.291, 90, 99.22, 90],
    ).repeat((2, 2, 2))
    frames = []
    for _ in range(n):
        atoms = base.copy()
        atoms.positions += rng.normal(0, 0.08, atoms.positions.shape)
        atoms.info["energy"] = -9.8 * len(atoms) + rng.normal()
        atoms.arrays["forces"] = rng.normal(0, 1.5, atoms.positions.shape)
        atoms.pbc = True
        frames.append(atoms)
    return frames


def batches(frames, r_max: float, batch_size: int, device: str):
    from nequip.data import AtomicDataDict, from_ase
    from nequip.data.transforms import ChemicalSpeciesToAtomTypeMapper, NeighborListTransform

    transforms = [
        ChemicalSpeciesToAtomTypeMapper(model_type_names=TYPES, chemical_species_to_atom_type_map={t: t for t in TYPES}),
        NeighborListTransform(r_max=r_max),
    ]
    items = []
    for atoms in frames:
        data = from_ase(atoms)
        for transform in transforms:
            data = transform(data)
        items.append(data)
    return [
        AtomicDataDict.to_(AtomicDataDict.batched_from_list(items[i : i + batch_size]), device)
        for i in range(0, len(items) - batch_size + 1, batch_size)
    ]


def build(family: str, size: str, corr, device: str, dtype: str):
    from gnnff_stability.train.module import CorrLightningModule

    spec = SIZES[(family, size)]
    model = dict(spec["model"], seed=0, model_dtype=dtype, type_names=TYPES, r_max=spec["r_max"],
                 avg_num_neighbors=40.0, per_type_energy_shifts=-9.8, per_type_energy_scales=1.5)
    module = CorrLightningModule(
        family=family, corr=None if corr is None else corr.as_dict(), corr_seed=0, model=model,
        loss=dict(_target_="nequip.train.EnergyForceLoss", per_atom_energy=True,
                  coeffs={"total_energy": 1.0, "forces": 1.0}),
        val_metrics=dict(_target_="nequip.train.EnergyForceMetrics", coeffs={"forces_mae": 1.0}),
        optimizer=dict(_target_="torch.optim.Adam", lr=1e-3),
        num_datasets={"train": 1, "val": 1, "test": 1},
    ).to(device)
    module.on_fit_start()
    optimizer = torch.optim.Adam(module.model.parameters(), lr=1e-3)
    return module, optimizer


def run_block(module, optimizer, data, steps: int, device: str) -> float:
    """Seconds per step over ``steps`` steps (one synchronisation at each end)."""
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for i in range(steps):
        batch = data[i % len(data)]
        optimizer.zero_grad(set_to_none=True)
        loss = module.training_step(batch.copy(), i)
        loss.backward()
        optimizer.step()
        module.ema.update_parameters(module.model)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def profile(modes, data, args) -> None:
    """Print torch.profiler op tables of one block of each mode (where the extra time goes)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    for name, (module, optimizer) in modes.items():
        with torch_profile(activities=activities) as prof:
            run_block(module, optimizer, data, args.steps, args.device)
        events = prof.key_averages()
        n_ops = sum(e.count for e in events if e.key.startswith("aten::"))
        print(f"--- {name}: {n_ops / args.steps:.0f} aten ops per step")
        print(events.table(sort_by="self_cpu_time_total", row_limit=args.profile))
        if args.device == "cuda":
            print(events.table(sort_by="self_cuda_time_total", row_limit=args.profile))


def bench(family, size, args, frames):
    from gnnff_stability.grid import DEFAULT_CORR_SELECTION
    from gnnff_stability.settings import corr_for

    selection = args.selection or DEFAULT_CORR_SELECTION[family]
    corr = corr_for(family, selection, scheduler="fixed", c_max=0.1, sample_edges=args.sample_edges)
    data = batches(frames, SIZES[(family, size)]["r_max"], args.batch_size, args.device)
    n_edges = data[0]["edge_index"].shape[1]
    modes = {"baseline": build(family, size, None, args.device, args.dtype),
             "corr": build(family, size, corr, args.device, args.dtype)}
    for module, optimizer in modes.values():
        run_block(module, optimizer, data, args.warmup, args.device)
    times = {"baseline": [], "corr": []}
    for r in range(args.repeats):
        order = ("baseline", "corr") if r % 2 == 0 else ("corr", "baseline")
        for name in order:
            times[name].append(run_block(*modes[name], data, args.steps, args.device))
    if args.profile:
        profile(modes, data, args)
    ratios = [c / b for c, b in zip(times["corr"], times["baseline"])]
    base, cor = statistics.median(times["baseline"]), statistics.median(times["corr"])
    print(
        f"{family:8s} {size:9s} {selection:10s} edges/batch {n_edges:6d}  "
        f"baseline {base * 1e3:9.2f} ms/step  corr {cor * 1e3:9.2f} ms/step  "
        f"ratio {statistics.median(ratios):.4f} (rounds: {min(ratios):.3f}-{max(ratios):.3f}; "
        f"fastest blocks: {min(times['corr']) / min(times['baseline']):.4f})",
        flush=True,
    )
    return statistics.median(ratios)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=["nequip", "allegro", "both"], default="both")
    parser.add_argument("--size", choices=["embedded", "paper", "both"], default="both")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--batch-size", type=int, default=4, help="96-atom frames per step")
    parser.add_argument("--steps", type=int, default=5, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=6, help="rounds of (baseline, corr) blocks")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps per mode")
    parser.add_argument("--sample-edges", default="1024", help="edges per structure (int or 'sqrt')")
    parser.add_argument("--selection", default=None, help="feature selection (default: family default)")
    parser.add_argument("--profile", type=int, default=0, help="print this many rows of profiler tables")
    parser.add_argument("--data", default=None, help="extended XYZ frames (default: synthetic 96-atom cells)")
    args = parser.parse_args(argv)
    args.sample_edges = args.sample_edges if args.sample_edges == "sqrt" else int(args.sample_edges)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from nequip.utils.global_state import set_global_state

    set_global_state()
    if args.data:
        import ase.io

        frames = ase.io.read(args.data, index=f":{args.batch_size * 4}")
    else:
        frames = synthetic_frames(args.batch_size * 4, seed=0)
    families = ["nequip", "allegro"] if args.family == "both" else [args.family]
    sizes = ["embedded", "paper"] if args.size == "both" else [args.size]
    print(f"device {args.device}, threads {args.threads}, batch {args.batch_size} x {len(frames[0])} atoms, "
          f"{args.steps} steps x {args.repeats} rounds, sample_edges {args.sample_edges}, dtype {args.dtype}")
    for family in families:
        for size in sizes:
            bench(family, size, args, frames)


if __name__ == "__main__":
    main()
