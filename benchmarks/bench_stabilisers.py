"""Training-step cost of the stabilisers against the baseline, measured side by side.

Modes (all the same model, same seed, same pre-collated batches; the model is the one ``train_model``
would train for the family in ``config/config.yaml`` (``--size embedded``) or ``config/paper.yaml``
(``--size paper``, Tables A5-A7), built by :func:`bench_corr_overhead.model_spec` from the Hydra
template with the method's own overrides (:func:`gnnff_stability.train.hydra.method_overrides`)):

- ``baseline``: nequip's EMA training module (:class:`~gnnff_stability.train.sam.CorrSAMLightningModule`
  with ``sam: null`` and ``corr: null``, i.e. exactly ``EMALightningModule``);
- ``sam``: the same with SAM at the schema's default settings, two forward/backward passes per step;
- ``sam_adaptive``: ASAM (``rho`` 0.5, the schema's ``eta``);
- ``zbl``: the model with nequip's ZBL ``pair_potential`` (NequIP and Allegro only);
- ``decomposed``: the body-term decomposition at the schema's defaults, frozen two- and three-body
  terms (pre-fitted for one epoch, which is all the timing needs; NequIP and Allegro only).

A step is what Lightning's automatic optimisation runs, called the same way: a closure of
``training_step`` (forward with forces, nequip's loss), ``zero_grad`` and ``backward`` handed to
the module's ``optimizer_step`` (Adam step and EMA update; SAM calls the closure twice). Lightning's
own per-step bookkeeping is left out (the same for every mode). Blocks of ``--steps`` steps rotate
through the modes for ``--repeats`` rounds; the ratio printed is the median over rounds of
mode/baseline block times, with the range over rounds and the ratio of the fastest blocks, for
wall time and for the process's CPU time. On a shared, loaded machine the CPU-time ratio with
``--threads 1`` is the steadier estimate of the extra work.

Allegro-Legato reports +75 % training time for SAM (a ratio of 1.75).

``--smoke`` runs one step per block and two rounds on one-frame batches (a check that it runs, in
seconds); ``--csv`` appends one row per model and mode to a CSV file.

Usage::

    python benchmarks/bench_stabilisers.py                       # CPU, NequIP and Allegro, embedded size
    python benchmarks/bench_stabilisers.py --family nequip --steps 5 --repeats 10
    python benchmarks/bench_stabilisers.py --device cuda --size paper --steps 20
    python benchmarks/bench_stabilisers.py --smoke
"""

from __future__ import annotations

import argparse
import sys
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import torch

# benchmarks/ is on sys.path: the same rattled HfO2 cells, configs' models and CSV rows
from bench_corr_overhead import SMOKE, TYPES, apply_smoke, model_spec, synthetic_frames, write_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # a validated settings block
from partial_settings import block as _block  # noqa: E402

MODES = ("baseline", "sam", "sam_adaptive", "zbl", "decomposed")
#: Each mode's ``methods.<name>`` block (unset keys: the schema's defaults).
METHODS = {
    "baseline": {},
    "sam": {"sam": {}},
    "sam_adaptive": {"sam": {"rho": 0.5, "adaptive": True}},
    "zbl": {"prior": "zbl"},
    "decomposed": {"decomposition": {}},
}


def method_preset(mode: str, family: str):
    """The validated method preset of ``mode`` for ``family`` (the schema fills the defaults)."""
    from gnnff_stability.config import validate_config
    from gnnff_stability.settings import MethodPreset

    config = validate_config({
        "grid": {"model": ["m"], "layers": {"m": [1]}, "method": [mode]},
        "models": {"m": {"family": family}},
        "methods": {mode: METHODS[mode]},
    })
    return MethodPreset.from_config(mode, config["methods"][mode])


def batches(frames, r_max: float, batch_size: int, device: str):
    from nequip.data import AtomicDataDict

    from gnnff_stability.models.prefit import frames_to_data

    items = frames_to_data(frames, TYPES, r_max)
    return [
        AtomicDataDict.to_(AtomicDataDict.batched_from_list(items[i : i + batch_size]), device)
        for i in range(0, len(items) - batch_size + 1, batch_size)
    ]


def build(method, family: str, size: str, prefit: Path, device: str, dtype: str):
    from gnnff_stability.train.sam import CorrSAMLightningModule

    spec = model_spec(family, size, dtype, method=method, prefit=prefit)
    module = CorrSAMLightningModule(
        family=family, sam=None if method.sam is None else dict(method.sam), corr=None, model=spec["model"],
        loss=dict(_target_="nequip.train.EnergyForceLoss", per_atom_energy=True,
                  coeffs={"total_energy": 1.0, "forces": 1.0}),
        val_metrics=dict(_target_="nequip.train.EnergyForceMetrics", coeffs={"forces_mae": 1.0}),
        optimizer=dict(_target_="torch.optim.Adam", lr=1e-3),
        num_datasets={"train": 1, "val": 1, "test": 1},
    ).to(device)
    optimizer = torch.optim.Adam(module.model.parameters(), lr=1e-3)
    return module, optimizer, spec


def run_block(module, optimizer, data, steps: int, device: str) -> tuple[float, float]:
    """Wall and process-CPU seconds per step over ``steps`` steps (one synchronisation at each end)."""
    if device == "cuda":
        torch.cuda.synchronize()
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(steps):
        batch = data[i % len(data)]

        def closure(batch=batch, i=i):
            loss = module.training_step(batch.copy(), i)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            return loss

        module.optimizer_step(0, i, optimizer, closure)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def bench(family: str, size: str, args, frames, prefit: Path) -> dict[str, float]:
    methods = {m: method_preset(m, family) for m in args.modes}
    modes = {m: method for m, method in methods.items() if method.applies_to(family)}
    built = {m: build(method, family, size, prefit, args.device, args.dtype) for m, method in modes.items()}
    spec = built["baseline"][2]
    data = batches(frames, spec["r_max"], args.batch_size, args.device)
    n_edges = data[0]["edge_index"].shape[1]
    n_params = sum(p.numel() for p in built["baseline"][0].model.parameters() if p.requires_grad)
    for module, optimizer, _ in built.values():
        run_block(module, optimizer, data, args.warmup, args.device)
    wall: dict[str, list[float]] = {m: [] for m in built}
    cpu: dict[str, list[float]] = {m: [] for m in built}
    names = list(built)
    for r in range(args.repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            w, c = run_block(*built[name][:2], data, args.steps, args.device)
            wall[name].append(w)
            cpu[name].append(c)
    skipped = sorted(set(methods) - set(modes))
    print(f"{family} {size} L{spec['layers']} ({n_params} parameters): {n_edges} edges per batch, baseline "
          f"{statistics.median(wall['baseline']) * 1e3:.1f} ms/step wall, "
          f"{statistics.median(cpu['baseline']) * 1e3:.1f} ms/step CPU"
          + (f" (not for {family}: {', '.join(skipped)})" if skipped else ""), flush=True)
    common = dict(benchmark="stabilisers", family=family, size=size, layers=spec["layers"], device=args.device,
                  dtype=args.dtype, batch=args.batch_size, atoms=int(data[0]["pos"].shape[0]), edges=n_edges,
                  parameters=n_params, steps=args.steps, rounds=args.repeats)
    rows = [dict(common, mode="baseline", s_per_step=f"{statistics.median(wall['baseline']):.6g}",
                 s_per_step_min=f"{min(wall['baseline']):.6g}", ratio="1")]
    ratios = {}
    for name in names[1:]:
        per_round = [t / b for t, b in zip(wall[name], wall["baseline"])]
        per_round_cpu = [t / b for t, b in zip(cpu[name], cpu["baseline"])]
        ratios[name] = statistics.median(per_round)
        fastest = min(wall[name]) / min(wall["baseline"])
        print(f"  {name:13s} {statistics.median(wall[name]) * 1e3:9.1f} ms/step  wall ratio {ratios[name]:.3f} "
              f"(rounds {min(per_round):.3f}-{max(per_round):.3f}; fastest blocks "
              f"{fastest:.3f})  CPU-time ratio {statistics.median(per_round_cpu):.3f} "
              f"(rounds {min(per_round_cpu):.3f}-{max(per_round_cpu):.3f})", flush=True)
        rows.append(dict(common, mode=name, s_per_step=f"{statistics.median(wall[name]):.6g}",
                         s_per_step_min=f"{min(wall[name]):.6g}", ratio=f"{ratios[name]:.5f}",
                         ratio_fastest=f"{fastest:.5f}"))
    write_rows(args.csv, rows)
    return ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--family", choices=["nequip", "allegro", "gemnet", "both"], default="both",
                        help="both: NequIP and Allegro")
    parser.add_argument("--size", choices=["embedded", "paper"], default="embedded",
                        help="the model of config/config.yaml (embedded) or config/paper.yaml (paper)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--batch-size", type=int, default=4, help="96-atom frames per step")
    parser.add_argument("--steps", type=int, default=4, help="steps per timed block")
    parser.add_argument("--repeats", type=int, default=6, help="rounds over all modes")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per mode")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                        help="modes to time (baseline is always included)")
    parser.add_argument("--csv", default=None, help="append one row per model and mode to this CSV file")
    parser.add_argument("--smoke", action="store_true", help=f"check that it runs: {SMOKE}")
    args = parser.parse_args(argv)
    apply_smoke(args, parser)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device")
    args.modes = ["baseline"] + [m for m in args.modes if m != "baseline"]
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    from nequip.utils.global_state import set_global_state

    set_global_state()
    frames = synthetic_frames(args.batch_size * 4, seed=0)
    families = ["nequip", "allegro"] if args.family == "both" else [args.family]
    print(f"device {args.device}, threads {args.threads}, batch {args.batch_size} x {len(frames[0])} atoms, "
          f"{args.steps} steps x {args.repeats} rounds, dtype {args.dtype}")
    with tempfile.TemporaryDirectory() as tmp:
        prefit = Path(tmp) / "body.pt"
        if "decomposed" in args.modes:
            from gnnff_stability.models.prefit import prefit_body_terms

            dec = _block("methods.stub.decomposition", {"body": {"r_cut": {"Hf-Hf": 3.8, "Hf-O": 3.0, "O-O": 3.0}}})
            prefit_body_terms(frames[:4], prefit, TYPES, dec["body"], energy_weight=1.0, force_weight=1.0, seed=0,
                              **{**dec["prefit"], "epochs": 1, "batch_size": 4})
        for family in families:
            bench(family, args.size, args, frames, prefit)


if __name__ == "__main__":
    main()
