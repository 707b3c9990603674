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

``--smoke`` runs one step per block, two rounds, one frame per batch, at the embedded size unless
``--size`` is given: a check that the benchmark still runs (seconds), not a measurement. ``--csv``
appends one row per model and mode (seconds per step, ratio to the baseline) to a CSV file.

Usage::

    python benchmarks/bench_corr_overhead.py --size embedded     # CPU, every family of the config
    python benchmarks/bench_corr_overhead.py --device cuda --size paper --steps 20 --repeats 10
    python benchmarks/bench_corr_overhead.py --smoke
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"embedded": REPO / "config" / "config.yaml", "paper": REPO / "config" / "paper.yaml",
           "gemnet": REPO / "config" / "gemnet.yaml"}
#: Data statistics the templates take from resolvers (numbers of the right size for 96-atom HfO2).
STATS = {"avg_num_neighbors": 40.0, "per_type_energy_shifts": -9.8, "per_type_energy_scales": 1.5}
#: Profiler ranges and autograd nodes that belong to the correlation loss.
CORR_MARKS = ("gnnff_corr::", "_OffdiagAbsPearson", "_TapGather", "_Gram")
TYPES = ["Hf", "O"]
FAMILIES = ("nequip", "allegro", "gemnet")
CSV_COLUMNS = ("benchmark", "family", "size", "layers", "device", "dtype", "batch", "atoms", "edges",
               "parameters", "mode", "s_per_step", "s_per_step_min", "ratio", "ratio_lo95", "ratio_hi95",
               "ratio_fastest", "profiler_share", "steps", "rounds")
#: ``--smoke``: the fewest steps that still run every code path of a benchmark.
SMOKE = {"steps": 1, "repeats": 2, "warmup": 1, "batch_size": 1}


def load_size(size: str) -> dict:
    """The validated campaign config of ``size`` (a key of :data:`CONFIGS`)."""
    from gnnff_stability.config import load_config

    return load_config(CONFIGS[size])


def config_families(size: str) -> list[str]:
    """The families the size's config trains, in :data:`FAMILIES` order."""
    config = load_size(size)
    return [f for f in FAMILIES if any(config["models"][n]["family"] == f for n in config["grid"]["model"])]


def write_rows(path: str | Path | None, rows: list[dict]) -> None:
    """Append ``rows`` (keys :data:`CSV_COLUMNS`) to the CSV ``path``, with a header if it is new."""
    if path is None:
        return
    path = Path(path)
    new = not path.exists() or path.stat().st_size == 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, restval="")
        if new:
            writer.writeheader()
        writer.writerows(rows)


def apply_smoke(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Put :data:`SMOKE`'s values in place of the options the command line left at their defaults."""
    if getattr(args, "smoke", False):
        for key, value in SMOKE.items():
            if hasattr(args, key) and getattr(args, key) == parser.get_default(key):
                setattr(args, key, value)


def model_spec(family: str, size: str, dtype: str, method=None, prefit: str | Path | None = None) -> dict:
    """The model ``train_model`` would train for ``family`` in the size's config, as a plain dict.

    ``method`` (a :class:`~gnnff_stability.settings.MethodPreset`) adds that method's Hydra overrides
    (:func:`gnnff_stability.train.hydra.method_overrides`: a prior, the decomposition with its phase-1
    file ``prefit``); its correlation loss is not part of the model.

    Returns ``{"r_max", "layers", "model" (the resolved ``training_module.model``), "corr"
    (the config's ``corr`` method resolved for the family), "preset"}``.
    """
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from gnnff_stability.grid import method_role, method_settings
    from gnnff_stability.settings import CorrSettings, MethodPreset, ModelPreset, TrainingSettings
    from gnnff_stability.train.hydra import hydra_overrides, method_overrides, template_dir

    config = load_size(size)
    name = next(n for n in config["grid"]["model"] if config["models"][n]["family"] == family)
    preset = ModelPreset.from_config(name, config["models"][name])
    layers = max(config["grid"]["layers"][name])
    training = dataclasses.replace(TrainingSettings.from_config(config["training"]), dtype=dtype)
    files = {"train": "a.xyz", "valid": "b.xyz", "test": "c.xyz"}
    overrides = [o for o in hydra_overrides(preset, layers, 0, None, training, tuple(config["material"]["species"]), files, "run")
                 if not o.startswith("hydra.")]
    if method is not None:
        row = {"method": method.name, **method_role(method, family), **method_settings(method, family)}
        overrides += [o for o in method_overrides(row, tuple(config["material"]["species"]), prefit) if not o.startswith("training_module._target_")
                      and not o.startswith("++training_module.sam")]
    overrides += [f"training_module.model.{k}={v}" for k, v in STATS.items()]
    with template_dir() as templates, initialize_config_dir(config_dir=str(templates), version_base=None):
        cfg = compose(config_name=family, overrides=overrides)
    model = OmegaConf.to_container(cfg.training_module.model, resolve=True)
    methods = [MethodPreset.from_config(n, block) for n, block in config["methods"].items()]
    corr = next((m for m in methods if m.corr is not None and m.applies_to(family)), None)
    return {"r_max": float(model["r_max"]), "layers": layers, "model": model, "preset": name,
            "corr": None if corr is None else CorrSettings.from_config(method_settings(corr, family)["corr_settings"])}


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
    from nequip.data import AtomicDataDict

    from gnnff_stability.models.prefit import frames_to_data

    items = frames_to_data(frames, TYPES, r_max)
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

    from gnnff_stability.train import features

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


def bench(family, size, args, frames, spec=None):
    """Time baseline and corr steps of ``family`` at ``size`` (``spec``: a :func:`model_spec`-like dict
    in place of the config's model) and print the ratios; rows go to ``args.csv`` when set."""
    spec = spec or model_spec(family, size, args.dtype)
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
        f"({n_params} parameters) {corr.selection:9s} edges/batch {n_edges:6d}\n"
        f"    baseline {base * 1e3:9.2f} ms/step  corr {cor * 1e3:9.2f} ms/step  "
        f"ratio {statistics.median(ratios):.4f} [95% bootstrap {lo:.4f}-{hi:.4f}] "
        f"(rounds: {min(ratios):.3f}-{max(ratios):.3f}; fastest blocks: "
        f"{min(times['corr']) / min(times['baseline']):.4f})\n"
        f"    profiler: correlation loss {corr_ms:.2f} of {all_ms:.2f} ms self-CPU per step "
        f"= {100 * share:.2f} % of the step ("
        + ", ".join(f"{k} {v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1])) + " ms)",
        flush=True,
    )
    common = dict(benchmark="corr_overhead", family=family, size=size, layers=spec["layers"],
                  device=args.device, dtype=args.dtype, batch=args.batch_size,
                  atoms=int(data[0]["pos"].shape[0]), edges=n_edges, parameters=n_params,
                  steps=args.steps, rounds=args.repeats)
    write_rows(getattr(args, "csv", None), [
        dict(common, mode="baseline", s_per_step=f"{base:.6g}", s_per_step_min=f"{min(times['baseline']):.6g}",
             ratio="1"),
        dict(common, mode="corr", s_per_step=f"{cor:.6g}", s_per_step_min=f"{min(times['corr']):.6g}",
             ratio=f"{statistics.median(ratios):.5f}", ratio_lo95=f"{lo:.5f}", ratio_hi95=f"{hi:.5f}",
             ratio_fastest=f"{min(times['corr']) / min(times['baseline']):.5f}", profiler_share=f"{share:.5f}"),
    ])
    return statistics.median(ratios), (lo, hi), share


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=[*FAMILIES, "all"], default="all",
                        help="model family (all: every family the size's config trains)")
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
    parser.add_argument("--csv", default=None, help="append one row per model and mode to this CSV file")
    parser.add_argument("--smoke", action="store_true",
                        help=f"check that it runs: {SMOKE}, embedded size unless --size is given")
    args = parser.parse_args(argv)
    if args.smoke and args.size == parser.get_default("size"):
        args.size = "embedded"
    apply_smoke(args, parser)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
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
    sizes = ["embedded", "paper"] if args.size == "both" else [args.size]
    print(f"device {args.device}, threads {args.threads}, batch {args.batch_size} x {len(frames[0])} atoms, "
          f"{args.steps} steps x {args.repeats} rounds, sample_edges {args.sample_edges}, dtype {args.dtype}")
    for size in sizes:
        families = config_families(size) if args.family == "all" else [args.family]
        for family in families:
            bench(family, size, args, frames)


if __name__ == "__main__":
    main()
