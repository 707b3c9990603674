"""Cost of the correlation loss: seconds per training step, baseline vs corr, side by side.

Both training modules (:class:`gnnff_stability.train.module.CorrLightningModule` with ``corr=None`` and
with the correlation loss) are built from the same config and seed, so they start from identical
weights, and they step on the same pre-collated batches (data loading is left out: it is the same
for both). Each step is what Lightning runs: ``training_step`` (forward with forces, nequip's loss,
plus the sampled correlation penalty), ``backward``, ``Adam.step`` and the EMA update. Blocks of
``--steps`` steps alternate between the two modes (ABBA order) for ``--repeats`` rounds.

Reported per model:

- the median over rounds of the corr/baseline ratio of block times, with a 95 % bootstrap interval
  of that median (2000 resamples of the rounds, seeded) and the range over rounds;
- the ratio of the fastest blocks (the estimate least affected by other load on the machine);
- the share of the correlation loss in the training step from ``torch.profiler`` (one profiled
  block of the corr mode): the self-CPU time of every operation run for the loss (drawing the
  sample, the gather in the forward hooks, the fused Pearson, their backward nodes) over the
  self-CPU time of all operations of the step. Unlike the ratio, it does not depend on how the two
  modes' blocks happened to share the machine, so it resolves a 1 % cost on a noisy machine.

Sizes come from the campaign configs, so the overhead belongs to the models the grids train:
``embedded`` from ``config/config.yaml`` and ``paper`` from ``config/paper.yaml`` (each family's
preset at its largest layer count, built from the Hydra template with the same overrides
``train_model`` passes: the paper NequIP is the hidden-irreps layout of Table A5, the paper
Allegro that of Table A6). The penalty uses the config's ``corr`` method (its feature selection and
``sample_edges``) with a fixed coefficient, so it is on in every step. Frames: 96-atom monoclinic
HfO2 cells (``--data`` extended XYZ, or rattled cells with synthetic labels, which is all the
timing needs).

Usage::

    python benchmarks/bench_corr_overhead.py --size embedded     # CPU, both families
    python benchmarks/bench_corr_overhead.py --device cuda --size paper --steps 20 --repeats 10
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"embedded": REPO / "config" / "config.yaml", "paper": REPO / "config" / "paper.yaml"}
#: Data statistics the templates take from resolvers (numbers of the right size for 96-atom HfO2).
STATS = {"avg_num_neighbors": 40.0, "per_type_energy_shifts": -9.8, "per_type_energy_scales": 1.5}
#: Profiler ranges and autograd nodes that belong to the correlation loss.
CORR_MARKS = ("gnnff_corr::", "_OffdiagAbsPearson", "_TapGather", "_Gram")
TYPES = ["Hf", "O"]


def model_spec(family: str, size: str, dtype: str) -> dict:
    """The model ``train_model`` would train for ``family`` in the size's config, as a plain dict.

    Returns ``{"r_max", "layers", "model" (the resolved ``training_module.model``), "corr"
    (the config's ``corr`` method resolved for the family), "preset"}``.
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gnnff_stability.config import load_config
    from gnnff_stability.grid import method_presets, method_settings, model_presets
    from gnnff_stability.settings import CorrSettings, TrainingSettings
    from gnnff_stability.train.hydra import hydra_overrides, template_dir

    config = load_config(CONFIGS[size])
    name = next(n for n in config["grid"]["model"] if config["models"][n]["family"] == family)
    preset = model_presets(config)[name]
    layers = max(config["grid"]["layers"][name])
    training = dataclasses.replace(TrainingSettings.from_config(config["training"]), dtype=dtype)
    files = {"train": "a.xyz", "valid": "b.xyz", "test": "c.xyz"}
    overrides = [o for o in hydra_overrides(preset, layers, 0, None, training, files, "run")
                 if not o.startswith("hydra.")]
    overrides += [f"training_module.model.{k}={v}" for k, v in STATS.items()]
    with template_dir() as templates, initialize_config_dir(config_dir=str(templates), version_base=None):
        cfg = compose(config_name=family, overrides=overrides)
    model = OmegaConf.to_container(cfg.training_module.model, resolve=True)
    method = next(m for m in method_presets(config).values() if not m.is_baseline and m.applies_to(family))
    return {"r_max": float(model["r_max"]), "layers": layers, "model": model, "preset": name,
            "corr": CorrSettings.from_config(method_settings(method, family)["corr_settings"])}


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


def build(family: str, model: dict, corr, device: str):
    from gnnff_stability.train.module import CorrLightningModule


    module = CorrLightningModule(
        family=family, corr=None if corr is None else corr.as_dict(), corr_seed=0, model=dict(model),
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


def _mark_corr_operations() -> None:
    """Wrap the correlation loss's Python entry points in profiler ranges (this process only)."""
    from torch.profiler import record_function

    from gnnff_stability import features

    def ranged(name, fn):
        def wrapper(*args, **kwargs):
            with record_function(f"gnnff_corr::{name}"):
                return fn(*args, **kwargs)
        return wrapper

    if getattr(features, "_bench_marked", False):
        return
    features.tap_gather = ranged("gather", features.tap_gather)
    features.FeatureRecorder.samples = ranged("sample", features.FeatureRecorder.samples)
    features.FeatureRecorder.losses = ranged("pearson", features.FeatureRecorder.losses)
    features._bench_marked = True


def corr_share(module, optimizer, data, steps: int, device: str) -> tuple[float, float, float, dict]:
    """Self-CPU time of the correlation-loss operations over that of the whole step (profiled).

    Returns ``(share, corr ms per step, all ms per step, {part: ms per step})``: an operation
    counts for the loss when it or one of its parents is a ``gnnff_corr::`` range (sampling, hook
    gather, Pearson) or an autograd node of the loss's own functions (their backward); the part is
    the outermost such parent.
    """
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        run_block(module, optimizer, data, steps, device)
    corr = total = 0.0
    parts: dict[str, float] = {}
    for event in prof.events():
        self_us = event.self_cpu_time_total
        total += self_us
        node, part = event, None
        while node is not None:
            if any(mark in node.name for mark in CORR_MARKS):
                part = node.name
            node = node.cpu_parent
        if part is not None:
            corr += self_us
            label = part.replace("gnnff_corr::", "").replace("autograd::engine::evaluate_function: ", "")
            parts[label] = parts.get(label, 0.0) + self_us / steps / 1e3
    return corr / total, corr / steps / 1e3, total / steps / 1e3, parts


def bootstrap_median(values, n_boot: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the median of ``values`` (seeded)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    medians = np.median(rng.choice(values, size=(n_boot, values.size), replace=True), axis=1)
    return float(np.percentile(medians, 2.5)), float(np.percentile(medians, 97.5))


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
    spec = model_spec(family, size, args.dtype)
    corr = dataclasses.replace(spec["corr"], selection=args.selection or spec["corr"].selection,
                               scheduler="fixed", c_max=spec["corr"].c_max or 0.1,
                               sample_edges=args.sample_edges or spec["corr"].sample_edges)
    data = batches(frames, spec["r_max"], args.batch_size, args.device)
    n_edges = data[0]["edge_index"].shape[1]
    modes = {"baseline": build(family, spec["model"], None, args.device),
             "corr": build(family, spec["model"], corr, args.device)}
    n_params = sum(p.numel() for p in modes["baseline"][0].model.parameters() if p.requires_grad)
    for module, optimizer in modes.values():
        run_block(module, optimizer, data, args.warmup, args.device)
    times = {"baseline": [], "corr": []}
    for r in range(args.repeats):
        order = ("baseline", "corr") if r % 2 == 0 else ("corr", "baseline")
        for name in order:
            times[name].append(run_block(*modes[name], data, args.steps, args.device))
    share, corr_ms, all_ms, parts = corr_share(*modes["corr"], data, args.steps, args.device)
    if args.profile:
        profile(modes, data, args)
    ratios = [c / b for c, b in zip(times["corr"], times["baseline"])]
    lo, hi = bootstrap_median(ratios)
    base, cor = statistics.median(times["baseline"]), statistics.median(times["corr"])
    print(
        f"{family:8s} {size:9s} L{spec['layers']} {spec['model']['_target_'].rsplit('.', 1)[-1]} "
        f"({n_params} parameters) {corr['selection']:9s} edges/batch {n_edges:6d}\n"
        f"    baseline {base * 1e3:9.2f} ms/step  corr {cor * 1e3:9.2f} ms/step  "
        f"ratio {statistics.median(ratios):.4f} [95% bootstrap {lo:.4f}-{hi:.4f}] "
        f"(rounds: {min(ratios):.3f}-{max(ratios):.3f}; fastest blocks: "
        f"{min(times['corr']) / min(times['baseline']):.4f})\n"
        f"    profiler: correlation loss {corr_ms:.2f} of {all_ms:.2f} ms self-CPU per step "
        f"= {100 * share:.2f} % of the step ("
        + ", ".join(f"{k} {v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])) + " ms)",
        flush=True,
    )
    return statistics.median(ratios), (lo, hi), share


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
    parser.add_argument("--sample-edges", default=None,
                        help="edges per structure (int or 'sqrt'; default: the config's corr method)")
    parser.add_argument("--selection", default=None,
                        help="feature selection (default: the config's corr method)")
    parser.add_argument("--profile", type=int, default=0, help="print this many rows of profiler tables")
    parser.add_argument("--data", default=None, help="extended XYZ frames (default: synthetic 96-atom cells)")
    args = parser.parse_args(argv)
    if args.sample_edges not in (None, "sqrt"):
        args.sample_edges = int(args.sample_edges)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from nequip.utils.global_state import set_global_state

    set_global_state()
    _mark_corr_operations()
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
