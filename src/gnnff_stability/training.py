"""Training NequIP / Allegro / GemNet-T through the real ``nequip-train``, with or without the correlation loss.

Three pieces:

- :class:`CorrLightningModule`, the training module the Hydra templates select
  (``training_module._target_``). It is nequip's ``EMALightningModule`` plus the correlation
  penalty of :mod:`gnnff_stability.corr` on the features chosen in :mod:`gnnff_stability.features`,
  and it logs the coefficient, the penalty and per-epoch wall times with nequip's metrics (they
  land in the CSV log). ``corr: null`` trains the plain baseline with the same module.
- :func:`train_model`, which runs ``nequip-train`` on a template in ``config/models/<family>.yaml``
  with every varying setting passed as a Hydra override, resumes from ``last.ckpt``, packages the
  best checkpoint with ``nequip-package``, and evaluates EMAE / FMAE / Corr on the test split.
- :func:`compile_model`, a wrapper of ``nequip-compile --mode aotinductor``.

Loss weighting
--------------
nequip's ``MetricsManager`` normalises the energy and force coefficients to sum to 1, so its
``weighted_sum`` is ``(c_e L_e + c_f L_f) / S`` with ``S = c_e + c_f``. The correlation term is added
**outside** it, in :meth:`CorrLightningModule.training_step`, with the effective weight
``c_corr / S``::

    loss = weighted_sum + (c_corr / S) L_corr = (c_e L_e + c_f L_f + c_corr L_corr) / S

i.e. the paper's total loss divided by the constant ``S`` (2 for ``c_e = c_f = 1``): the relative
weights are exactly the paper's, and Adam (invariant to a constant loss scale) takes the same steps.
Both the raw ``c_corr`` (``loss_coeff/corr``) and the effective ``c_corr / S``
(``loss_coeff/corr_effective``) are logged every epoch.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from nequip.train import EMALightningModule

from .config import FAMILY_MODEL_KEYS
from .corr import DEFAULT_EPS, validate_sample_size
from .features import DEFAULT_SELECTION, FAMILIES, SELECTIONS, FeatureRecorder
from .schedulers import CorrCoefficientScheduler, corr_coefficient, validate_schedule

__all__ = [
    "COMPILE_TARGETS",
    "CorrLightningModule",
    "collect_epoch_metrics",
    "compile_model",
    "default_config_dir",
    "evaluate_model",
    "hydra_overrides",
    "resolve_corr_settings",
    "train_model",
]

logger = logging.getLogger(__name__)

_SOLE_MODEL_KEY = "sole_model"
COMPILE_TARGETS = ("ase", "pair_nequip", "pair_allegro")
_CORR_KEYS = {"selection", "scheduler", "c_min", "c_max", "t_cycle", "sample_edges", "eps"}
_CORR_DEFAULTS = {
    "scheduler": "cosine",
    "c_min": 0.0,
    "c_max": 0.1,
    "t_cycle": 100,
    "sample_edges": 1024,
    "eps": DEFAULT_EPS,
}


# --------------------------------------------------------------------------------------------------
# training module
# --------------------------------------------------------------------------------------------------


def validate_corr(corr: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Check the training module's ``corr`` settings and fill defaults (``None`` stays ``None``).

    Keys: ``selection`` (a feature selection name, required), ``scheduler`` (fixed|linear|cosine),
    ``c_min``, ``c_max``, ``t_cycle`` (epochs), ``sample_edges`` (int >= 2 or ``"sqrt"``), ``eps``.
    """
    if corr is None:
        return None
    unknown = set(corr) - _CORR_KEYS
    if unknown:
        raise ValueError(f"unknown corr settings {sorted(unknown)}; allowed: {sorted(_CORR_KEYS)}")
    if "selection" not in corr:
        raise ValueError("corr settings need a feature `selection` (e.g. 'edge_1o' or 'edge')")
    out = {**_CORR_DEFAULTS, **dict(corr)}
    validate_schedule(out["scheduler"], out["c_min"], out["c_max"], out["t_cycle"])
    out["sample_edges"] = validate_sample_size(out["sample_edges"])
    if out["sample_edges"] is None:
        raise ValueError("sample_edges must be an integer >= 2 or 'sqrt' during training, got None")
    out["c_min"], out["c_max"], out["eps"] = float(out["c_min"]), float(out["c_max"]), float(out["eps"])
    out["t_cycle"] = int(out["t_cycle"])
    return out


def _loss_coeff_sum(loss: Mapping[str, Any] | None) -> float:
    """Sum ``S`` of the raw loss coefficients of a nequip loss config (before its normalisation)."""
    if loss is None:
        return 1.0
    if "coeffs" in loss and loss["coeffs"] is not None:
        values = [v for v in dict(loss["coeffs"]).values() if v is not None]
    elif "metrics" in loss:
        values = [m.get("coeff") for m in loss["metrics"] if m.get("coeff") is not None]
    else:  # nequip's EnergyForceLoss default coefficients
        values = [1.0, 1.0]
    total = float(sum(values))
    if not total > 0:
        raise ValueError(f"the loss coefficients must sum to a positive number, got {values}")
    return total


class CorrLightningModule(EMALightningModule):
    """nequip's EMA training module with the feature-decorrelation penalty (Zeng et al. 2025).

    Parameters
    ----------
    corr
        ``None`` for the baseline, or a dict with ``selection`` (see
        :data:`gnnff_stability.features.SELECTIONS`), ``scheduler``, ``c_min``, ``c_max``,
        ``t_cycle``, ``sample_edges`` (int, the paper's 1024, or ``"sqrt"``) and ``eps``.
    corr_seed
        Seed of the edge sampling (a generator owned by the module; not checkpointed, so a resumed
        run draws a different but equally random sample).
    **kwargs
        Everything ``nequip.train.EMALightningModule`` takes (``model``, ``loss``, ...).

    Notes
    -----
    The hooks are registered in ``on_fit_start`` and removed in ``on_fit_end`` (a hooked model cannot
    be pickled by ``nequip-package``) and they record only inside :meth:`training_step`; validation
    and test passes are untouched. Logged every epoch (CSV columns): ``train_loss_epoch/corr``
    (mean over steps of the summed penalty), ``train_loss_epoch/corr_layer{l}``,
    ``loss_coeff/corr``, ``loss_coeff/corr_effective``, ``time/epoch_s`` (epoch start to epoch end,
    validation included) and ``time/train_s`` (training batches only). Nothing extra is logged per
    step (a Lightning ``log`` call per step costs more than the penalty at the embedded size).
    """

    def __init__(self, corr: Mapping[str, Any] | None = None, corr_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.corr_settings = validate_corr(corr)
        self.corr_seed = int(corr_seed)
        self.loss_coeff_sum = _loss_coeff_sum(kwargs.get("loss"))
        self.corr_coeff = 0.0
        self._recorder: FeatureRecorder | None = None
        self._generator: torch.Generator | None = None
        self._corr_epoch_sum: torch.Tensor | None = None
        self._corr_epoch_steps = 0
        self._rows_checked = False
        self._pending_samples = None
        self._pending_corr = None
        self._t_epoch = math.nan
        self._t_last_batch = math.nan
        if self.corr_settings is not None:
            s = self.corr_settings
            self.corr_coeff = corr_coefficient(0, s["scheduler"], s["c_min"], s["c_max"], s["t_cycle"])
            # fail at build time, not after the first epoch, if the selection does not fit the model
            FeatureRecorder(self.model[_SOLE_MODEL_KEY], s["selection"])

    @property
    def corr_coeff_effective(self) -> float:
        """``c_corr / S``: the weight of ``L_corr`` next to nequip's normalised ``weighted_sum``."""
        return self.corr_coeff / self.loss_coeff_sum

    def configure_callbacks(self):
        if self.corr_settings is None:
            return []
        s = self.corr_settings
        return [CorrCoefficientScheduler(s["scheduler"], s["c_min"], s["c_max"], s["t_cycle"])]

    def on_fit_start(self) -> None:
        if self.corr_settings is not None:
            self._recorder = FeatureRecorder(
                self.model[_SOLE_MODEL_KEY], self.corr_settings["selection"]
            ).attach()
            logger.info(
                "correlation loss on %s: %s",
                self.corr_settings["selection"],
                ", ".join(tap.path for tap in self._recorder.taps),
            )

    def on_fit_end(self) -> None:
        if self._recorder is not None:
            self._recorder.remove()
            self._recorder = None

    def on_train_epoch_start(self) -> None:
        self._t_epoch = time.perf_counter()
        self._corr_epoch_sum = None
        self._corr_epoch_steps = 0

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        self._t_last_batch = time.perf_counter()

    def forward(self, inputs):
        """nequip's forward; inside a training step the penalty is queued right after it.

        Computing the penalty here, before nequip's loss reads its metrics back to the host, lets
        a GPU run its kernels while the host is still queueing the rest of the step.
        """
        output = super().forward(inputs)
        if self._pending_samples is not None:
            samples, self._pending_samples = self._pending_samples, None
            self._pending_corr = self._recorder.losses(samples, self.corr_settings["eps"])
        return output

    def training_step(self, batch, batch_idx: int, dataloader_idx: int = 0):
        recorder = self._recorder
        if recorder is None:
            return super().training_step(batch, batch_idx, dataloader_idx)
        if self._generator is None or self._generator.device != batch["pos"].device:
            self._generator = torch.Generator(device=batch["pos"].device)
            self._generator.manual_seed(self.corr_seed)
        # sample rows before the forward pass: the hooks gather only the sample
        samples = recorder.samples(batch, self.corr_settings["sample_edges"], self._generator)
        self._pending_samples = samples
        try:
            with recorder.recording(samples):
                loss = super().training_step(batch, batch_idx, dataloader_idx)
            corr_loss, per_layer, _ = self._pending_corr
        finally:
            self._pending_samples = None
            self._pending_corr = None
        if not self._rows_checked:
            recorder.check_rows(batch)
            self._rows_checked = True
        recorder.clear()
        per_layer = per_layer.detach()
        self._corr_epoch_sum = per_layer if self._corr_epoch_sum is None else self._corr_epoch_sum + per_layer
        self._corr_epoch_steps += 1
        if self.corr_coeff == 0.0:
            return loss
        return loss + self.corr_coeff_effective * corr_loss

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        now = time.perf_counter()
        self.log("time/epoch_s", now - self._t_epoch)
        self.log("time/train_s", self._t_last_batch - self._t_epoch)
        if self.corr_settings is not None:
            self.log("loss_coeff/corr", self.corr_coeff)
            self.log("loss_coeff/corr_effective", self.corr_coeff_effective)
            if self._corr_epoch_sum is not None and self._recorder is not None:
                mean = self._corr_epoch_sum / max(self._corr_epoch_steps, 1)
                self.log("train_loss_epoch/corr", mean.sum())
                for tap, value in zip(self._recorder.taps, mean):
                    self.log(f"train_loss_epoch/corr_layer{tap.layer}", value)


# --------------------------------------------------------------------------------------------------
# Hydra overrides and the nequip CLIs
# --------------------------------------------------------------------------------------------------


def default_config_dir() -> Path:
    """``config/models`` of the repository (the Hydra templates ``<family>.yaml``)."""
    return Path(__file__).resolve().parents[2] / "config" / "models"


def _hydra_value(value: Any) -> str:
    """Format a Python value in Hydra's override grammar (strings quoted)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (str, Path)):
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{text}'"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    raise ValueError(f"cannot pass {value!r} of type {type(value).__name__} as a Hydra override")


def resolve_corr_settings(family: str, method_settings: Mapping[str, Any]) -> dict[str, Any] | None:
    """The training module's ``corr`` dict for one model family from a method preset.

    Parameters
    ----------
    family
        ``"nequip"``, ``"allegro"`` or ``"gemnet"``.
    method_settings
        ``methods.<name>`` of the config: ``{"corr": None}`` or ``{"corr": {"features": {family:
        selection, ...}, "scheduler", "c_min", "c_max", "t_cycle", "sample_edges"}}``.
    """
    corr = method_settings.get("corr")
    if corr is None:
        return None
    features = corr.get("features") or {}
    if family not in features:
        raise ValueError(
            f"method has no feature selection for model family {family!r} (it names "
            f"{sorted(features)}); add methods.<name>.corr.features.{family}"
        )
    out = {"selection": features[family]}
    out.update({k: v for k, v in corr.items() if k not in ("features",)})
    out.setdefault("scheduler", "cosine")
    return validate_corr(out)


def hydra_overrides(
    family: str,
    layers: int,
    seed: int,
    model_settings: Mapping[str, Any],
    corr: Mapping[str, Any] | None,
    training_settings: Mapping[str, Any],
    train: str | Path,
    valid: str | Path,
    test: str | Path,
    run_dir: str | Path,
) -> list[str]:
    """Hydra overrides of ``config/models/<family>.yaml`` for one training run.

    Model keys (:data:`gnnff_stability.config.FAMILY_MODEL_KEYS` of the family; ``r_max`` becomes
    ``cutoff_radius``) become top-level template keys;
    ``model_settings["overrides"]`` is passed through verbatim (``{"training_module.model.x": v}``).
    Training keys: ``max_epochs``, ``batch_size``, ``lr``, ``loss_coeffs`` {forces, total_energy},
    ``dtype``, ``device`` (cpu|cuda|auto).
    """
    out = [
        f"hydra.run.dir={_hydra_value(Path(run_dir).resolve())}",
        f"seed={int(seed)}",
        f"num_layers={int(layers)}",
        f"train_file={_hydra_value(Path(train).resolve())}",
        f"val_file={_hydra_value(Path(valid).resolve())}",
        f"test_file={_hydra_value(Path(test).resolve())}",
        f"corr={_hydra_value(dict(corr) if corr is not None else None)}",
    ]
    allowed = FAMILY_MODEL_KEYS[family] | {"family", "overrides"}
    unknown = set(model_settings) - allowed
    if unknown:
        raise ValueError(
            f"model settings {sorted(unknown)} do not apply to {family}; allowed: {sorted(allowed)}"
        )
    for key in sorted(FAMILY_MODEL_KEYS[family] & set(model_settings)):
        name = "cutoff_radius" if key == "r_max" else key
        out.append(f"{name}={_hydra_value(model_settings[key])}")
    for key, value in (model_settings.get("overrides") or {}).items():
        out.append(f"{key}={_hydra_value(value)}")
    training_keys = {"max_epochs", "batch_size", "lr", "loss_coeffs", "dtype", "device"}
    unknown = set(training_settings) - training_keys
    if unknown:
        raise ValueError(f"unknown training settings {sorted(unknown)}; allowed: {sorted(training_keys)}")
    for key in ("max_epochs", "batch_size", "lr"):
        if key in training_settings:
            out.append(f"{key}={_hydra_value(training_settings[key])}")
    coeffs = training_settings.get("loss_coeffs") or {}
    for key in ("forces", "total_energy"):
        if key in coeffs:
            out.append(f"loss_coeffs.{key}={_hydra_value(float(coeffs[key]))}")
    if "dtype" in training_settings:
        out.append(f"model_dtype={_hydra_value(training_settings['dtype'])}")
    if "device" in training_settings:
        accelerator = {"cpu": "cpu", "cuda": "gpu", "auto": "auto"}.get(training_settings["device"])
        if accelerator is None:
            raise ValueError(f"training device must be cpu, cuda or auto, got {training_settings['device']!r}")
        out.append(f"accelerator={accelerator}")
    return out


def _cli(name: str) -> str:
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


def _run_streamed(cmd: list[str], env: dict[str, str], label: str) -> None:
    """Run a command, sending every output line to the logger; raise with the tail on failure."""
    logger.info("running: %s", " ".join(cmd))
    tail: list[str] = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                logger.info("[%s] %s", label, line)
                tail = (tail + [line])[-40:]
        rc = proc.wait()
    if rc != 0:
        raise RuntimeError(f"{label} failed with exit status {rc}; last output:\n" + "\n".join(tail))


def _cli_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    n = str(max(int(threads), 1))
    env.update(
        {
            "OMP_NUM_THREADS": n,
            "MKL_NUM_THREADS": n,
            "OPENBLAS_NUM_THREADS": n,
            "PYTHONUNBUFFERED": "1",
            "HYDRA_FULL_ERROR": "1",
        }
    )
    return env


def collect_epoch_metrics(run_dir: str | Path) -> pd.DataFrame:
    """Per-epoch metrics of a run from nequip's CSV logs (all ``csv/version_*``, resumed runs too).

    Step-level columns (``*_step/*``, ``step``) are dropped, the epoch-level rows of each epoch are
    merged into one, and for an epoch logged by several (resumed) runs the latest run wins.

    Returns
    -------
    pandas.DataFrame
        One row per epoch, ``epoch`` first, then the metric columns sorted by name.
    """
    paths = sorted(
        Path(run_dir).glob("csv/version_*/metrics.csv"),
        key=lambda p: int(re.sub(r"\D", "", p.parent.name) or 0),
    )
    frames = []
    for order, path in enumerate(paths):
        df = pd.read_csv(path)
        if df.empty or "epoch" not in df:
            continue
        df["_run"] = order
        frames.append(df)
    if not frames:
        return pd.DataFrame({"epoch": pd.Series(dtype=int)})
    df = pd.concat(frames, ignore_index=True)
    keep = [c for c in df.columns if c not in ("step",) and "_step/" not in c and not c.startswith("test")]
    df = df[keep]
    metric_cols = [c for c in df.columns if c not in ("epoch", "_run")]
    df = df.dropna(subset=metric_cols, how="all")
    if df.empty:
        return pd.DataFrame({"epoch": pd.Series(dtype=int)})
    latest = df.groupby("epoch")["_run"].transform("max")
    df = df[df["_run"] == latest]
    merged = df.groupby("epoch", as_index=False)[metric_cols].last()
    merged["epoch"] = merged["epoch"].astype(int)
    cols = ["epoch"] + sorted(c for c in merged.columns if c != "epoch" and merged[c].notna().any())
    return merged[cols].sort_values("epoch").reset_index(drop=True)


# --------------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------------


def _load_graph_model(model_path: str | Path, device: str) -> torch.nn.Module:
    from nequip.model.saved_models.load_utils import load_saved_model
    from nequip.utils.global_state import set_global_state

    set_global_state()
    model = load_saved_model(str(model_path), compile_mode="eager")
    return model.eval().to(device)


def evaluate_model(
    model_path: str | Path,
    data_path: str | Path,
    selection: str | None = None,
    batch_size: int = 4,
    device: str = "cpu",
) -> dict[str, Any]:
    """EMAE, FMAE and the Corr value (Eq. 4) of a saved model on an extended-XYZ data set.

    Parameters
    ----------
    model_path
        ``.nequip.zip`` package or ``.ckpt`` checkpoint.
    data_path
        Extended XYZ with energies (eV) and forces (eV/Å).
    selection
        Feature selection for the Corr value; ``None`` uses the family default
        (:data:`gnnff_stability.features.DEFAULT_SELECTION`).
    batch_size
        Frames per model call.
    device
        ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    dict
        ``emae_meV_per_atom`` (mean over frames of ``|ΔE| / N``), ``fmae_meV_per_A`` (mean over all
        force components), ``corr_value`` (last selected layer), ``corr_value_per_layer`` (one per
        selected layer: mean off-diagonal ``|pearson|`` over **all** edges (atoms for ``node``) of
        each frame, averaged over frames; layers with two irreps groups give the mean of the two),
        ``corr_layers`` (their layer indices), ``corr_selection``, ``n_frames``.
    """
    import ase.io
    from nequip.data import AtomicDataDict, from_ase
    from nequip.integrations.utils import basic_transforms
    from nequip.nn import graph_model

    model = _load_graph_model(model_path, device)
    from .features import model_family

    family = model_family(model)
    selection = selection or DEFAULT_SELECTION[family]
    r_max = float(model.metadata[graph_model.R_MAX_KEY])
    type_names = model.metadata[graph_model.TYPE_NAMES_KEY].split(" ")
    transforms = basic_transforms(model.metadata, r_max, type_names, {t: t for t in type_names})
    frames = ase.io.read(str(data_path), index=":")
    if not frames:
        raise ValueError(f"no frames in {data_path}")
    recorder = FeatureRecorder(model, selection).attach()
    e_abs, f_abs, corr_rows = [], [], []
    try:
        for start in range(0, len(frames), batch_size):
            items = []
            for atoms in frames[start : start + batch_size]:
                data = from_ase(atoms)
                for transform in transforms:
                    data = transform(data)
                items.append(data)
            batch = AtomicDataDict.to_(AtomicDataDict.batched_from_list(items), device)
            samples = recorder.samples(batch, None)
            with recorder.recording():  # whole tensors: nothing to sample
                out = model(batch.copy())
            recorder.check_rows(batch)
            recorder.outputs = [rows.detach() for rows in recorder.captured()]
            _, _, per_structure = recorder.losses(samples, dtype=torch.float64)
            recorder.clear()
            n_atoms = batch[AtomicDataDict.NUM_NODES_KEY].double()
            e_ref = batch[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1).double()
            e_pred = out[AtomicDataDict.TOTAL_ENERGY_KEY].detach().reshape(-1).double()
            e_abs.append(((e_pred - e_ref).abs() / n_atoms).cpu().numpy())
            f_ref = batch[AtomicDataDict.FORCE_KEY].double()
            f_pred = out[AtomicDataDict.FORCE_KEY].detach().double()
            f_abs.append((f_pred - f_ref).abs().reshape(-1).cpu().numpy())
            # [n_structures, n_taps]: mean over the irreps groups of each tap
            corr_rows.append(torch.stack([p.mean(-1) for p in per_structure], -1).cpu().numpy())
    finally:
        recorder.remove()
    corr = np.concatenate(corr_rows, axis=0).mean(axis=0)
    return {
        "emae_meV_per_atom": float(np.concatenate(e_abs).mean() * 1000.0),
        "fmae_meV_per_A": float(np.concatenate(f_abs).mean() * 1000.0),
        "corr_value": float(corr[-1]),
        "corr_value_per_layer": [float(v) for v in corr],
        "corr_layers": recorder.layers,
        "corr_selection": selection,
        "n_frames": len(frames),
    }


# --------------------------------------------------------------------------------------------------
# the pipeline steps
# --------------------------------------------------------------------------------------------------


def package_checkpoint(ckpt: str | Path, out: str | Path, threads: int = 1) -> Path:
    """``nequip-package build ckpt out`` (``out`` must end in ``.nequip.zip``), written atomically."""
    out = Path(out)
    if not out.name.endswith(".nequip.zip"):
        raise ValueError(f"package path must end in .nequip.zip, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name.replace(".nequip.zip", ".partial.nequip.zip"))
    _run_streamed(
        [_cli("nequip-package"), "build", str(Path(ckpt).resolve()), str(partial.resolve())],
        _cli_env(threads),
        "nequip-package",
    )
    partial.replace(out)
    return out


def train_model(
    model: str,
    layers: int,
    seed: int,
    model_settings: Mapping[str, Any],
    method_settings: Mapping[str, Any],
    training_settings: Mapping[str, Any],
    train: str | Path,
    valid: str | Path,
    test: str | Path,
    run_dir: str | Path,
    model_out: str | Path,
    metrics_out: str | Path,
    epoch_csv_out: str | Path,
    threads: int = 1,
    method: str | None = None,
    config_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Train one model with ``nequip-train``, package it, evaluate it and write its metrics.

    Parameters
    ----------
    model
        Model preset name (written into metrics.json).
    layers
        Interaction layers.
    seed
        Training seed (model initialisation, data shuffling, edge sampling).
    model_settings
        ``models.<model>`` of the config: ``family`` (nequip|allegro|gemnet) and the keys of
        :func:`hydra_overrides`.
    method_settings
        ``methods.<method>``: ``{"corr": None}`` or the correlation-loss settings.
    training_settings
        ``training`` of the config.
    train, valid, test
        Extended-XYZ splits.
    run_dir
        nequip-train's output directory (checkpoints, CSV logs, Hydra config). A ``last.ckpt``
        there is resumed: the epoch counter, optimiser, EMA and schedule continue.
    model_out, metrics_out, epoch_csv_out
        ``model.nequip.zip``, ``metrics.json``, ``metrics_epoch.csv``.
    threads
        CPU threads of the training process.
    method
        Method preset name for metrics.json (defaults to ``"corr"`` / ``"baseline"``).
    config_dir
        Directory of the Hydra templates (default :func:`default_config_dir`).

    Returns
    -------
    dict
        The metrics written to ``metrics_out``: the contract keys plus ``s_per_epoch_train``
        (training batches only), ``corr_selection``, ``corr_layers``, ``family``, ``resumed``.
        ``train_wall_s`` is the sum of the per-epoch wall times over all (resumed) runs.
    """
    family = model_settings.get("family")
    if family not in FAMILIES:
        raise ValueError(f"model family must be one of {FAMILIES}, got {family!r}")
    if int(layers) < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    corr = resolve_corr_settings(family, method_settings)
    if corr is not None and corr["selection"] not in SELECTIONS[family]:
        raise ValueError(
            f"feature selection {corr['selection']!r} is not defined for {family}; "
            f"allowed: {SELECTIONS[family]}"
        )
    config_dir = Path(config_dir) if config_dir is not None else default_config_dir()
    if not (config_dir / f"{family}.yaml").exists():
        raise ValueError(f"no Hydra template {config_dir / (family + '.yaml')}")
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    overrides = hydra_overrides(
        family, layers, seed, model_settings, corr, training_settings, train, valid, test, run_dir
    )
    last = run_dir / "last.ckpt"
    resumed = last.exists()
    if resumed:
        logger.info("resuming from %s", last)
        overrides.append(f"+ckpt_path={_hydra_value(last)}")
    env = _cli_env(threads)
    cmd = [_cli("nequip-train"), "-cp", str(config_dir.resolve()), "-cn", family, *overrides]
    t0 = time.perf_counter()
    _run_streamed(cmd, env, "nequip-train")
    logger.info("nequip-train finished in %.1f s", time.perf_counter() - t0)

    best = run_dir / "best.ckpt"
    if not best.exists():
        raise RuntimeError(f"nequip-train wrote no {best}")
    package_checkpoint(best, model_out, threads)

    epochs = collect_epoch_metrics(run_dir)
    Path(epoch_csv_out).parent.mkdir(parents=True, exist_ok=True)
    epochs.to_csv(epoch_csv_out, index=False)

    torch.set_num_threads(max(int(threads), 1))
    evaluation = evaluate_model(model_out, test, corr["selection"] if corr else None)

    def _median(column: str) -> float:
        if column in epochs and epochs[column].notna().any():
            return float(epochs[column].median())
        return math.nan

    metrics = {
        "model": model,
        "family": family,
        "layers": int(layers),
        "method": method if method is not None else ("corr" if corr else "baseline"),
        "seed": int(seed),
        "emae_meV_per_atom": evaluation["emae_meV_per_atom"],
        "fmae_meV_per_A": evaluation["fmae_meV_per_A"],
        "corr_value": evaluation["corr_value"],
        "corr_value_per_layer": evaluation["corr_value_per_layer"],
        "corr_layers": evaluation["corr_layers"],
        "corr_selection": evaluation["corr_selection"],
        "s_per_epoch": _median("time/epoch_s"),
        "s_per_epoch_train": _median("time/train_s"),
        "epochs": int(epochs["epoch"].max() + 1) if len(epochs) else 0,
        "train_wall_s": float(epochs["time/epoch_s"].sum()) if "time/epoch_s" in epochs else math.nan,
        "n_test_frames": evaluation["n_frames"],
        "resumed": resumed,
    }
    Path(metrics_out).parent.mkdir(parents=True, exist_ok=True)
    Path(metrics_out).write_text(json.dumps(metrics, indent=2) + "\n")
    logger.info(
        "%s L%d seed %d: EMAE %.2f meV/atom, FMAE %.1f meV/Å, Corr %.4f, %.2f s/epoch",
        model, layers, seed, metrics["emae_meV_per_atom"], metrics["fmae_meV_per_A"],
        metrics["corr_value"], metrics["s_per_epoch"],
    )
    return metrics


def compile_model(
    package_path: str | Path,
    out_path: str | Path,
    target: str = "ase",
    device: str = "cpu",
    threads: int = 1,
) -> Path:
    """Compile a packaged model with ``nequip-compile --mode aotinductor``.

    Parameters
    ----------
    package_path
        ``model.nequip.zip``.
    out_path
        Output file; must end in ``.nequip.pt2``.
    target
        ``"ase"`` (the embedded engine, ``NequIPCalculator.from_compiled_model``),
        ``"pair_nequip"`` or ``"pair_allegro"`` (LAMMPS pair styles of an HPC build).
    device
        ``"cpu"`` or ``"cuda"`` (the compiled file runs only on that device kind).
    threads
        CPU threads for the compilation (AOTInductor on CPU takes ~1-2 minutes for a tiny model).
    """
    if target not in COMPILE_TARGETS:
        raise ValueError(f"compile target must be one of {COMPILE_TARGETS}, got {target!r}")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"compile device must be 'cpu' or 'cuda', got {device!r}")
    out_path = Path(out_path)
    if not out_path.name.endswith(".nequip.pt2"):
        raise ValueError(f"compiled model path must end in .nequip.pt2, got {out_path}")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        _cli("nequip-compile"), str(Path(package_path).resolve()), str(out_path.resolve()),
        "--mode", "aotinductor", "--device", device, "--target", target,
    ]
    _run_streamed(cmd, _cli_env(threads), "nequip-compile")
    if not out_path.exists():
        raise RuntimeError(f"nequip-compile wrote no {out_path}")
    return out_path
