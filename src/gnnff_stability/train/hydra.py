"""The Hydra templates of the model families, and the overrides that turn one into one training run.

One template per family (``templates/<family>.yaml``, package data) holds the object graph nequip-train
instantiates: data module, trainer, callbacks, :class:`~gnnff_stability.train.module.CorrLightningModule`
and the model builder. Every value the campaign configuration owns is left mandatory (``???``) in the
template and passed by :func:`hydra_overrides`, so a template holds no copy of a configuration default.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from gnnff_stability.families import FAMILIES
from gnnff_stability.models.priors import zbl_overrides
from gnnff_stability.settings import ModelPreset, TrainingSettings

__all__ = ["ACCELERATORS", "DECOMPOSED_BUILDER", "SAM_MODULE", "hydra_overrides", "hydra_value",
           "method_overrides", "template_dir", "template_name"]

#: ``training.device`` -> Lightning accelerator.
ACCELERATORS = {"cpu": "cpu", "cuda": "gpu", "auto": "auto"}
#: The training module of methods with SAM: the correlation-loss module with a two-pass step.
SAM_MODULE = "gnnff_stability.train.sam.CorrSAMLightningModule"
#: The builder that wraps a template's model in the two- and three-body terms.
DECOMPOSED_BUILDER = "gnnff_stability.models.decomposition.DecomposedGNNModel"
#: Model-preset keys whose template key has another name.
_TEMPLATE_KEY = {"r_max": "cutoff_radius"}


@contextmanager
def template_dir() -> Iterator[Path]:
    """The directory of the Hydra templates, as a real path for ``nequip-train -cp`` (any install)."""
    with resources.as_file(resources.files("gnnff_stability.train").joinpath("templates")) as path:
        yield Path(path)


def template_name(family: str) -> str:
    """The config name (``-cn``) of ``family``'s Hydra template (its record's ``template``)."""
    return Path(FAMILIES[family].template).stem


def hydra_value(value: Any) -> str:
    """Format a Python value in Hydra's override grammar (strings quoted)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return repr(float(value))
    if isinstance(value, str | Path):
        text = str(value).replace("\\", "\\\\").replace("'", "\\'")
        return f"'{text}'"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, Sequence):
        return "[" + ",".join(hydra_value(v) for v in value) + "]"
    raise ValueError(f"cannot pass {value!r} of type {type(value).__name__} as a Hydra override")


def hydra_overrides(
    model: ModelPreset,
    layers: int,
    seed: int,
    corr: Mapping[str, Any] | None,
    training: TrainingSettings,
    species: Sequence[str],
    files: Mapping[str, str | Path],
    run_dir: str | Path,
) -> list[str]:
    """Hydra overrides of ``templates/<model.family>.yaml`` for one training run.

    Parameters
    ----------
    model
        The model preset: its hyper-parameters become top-level template keys (``r_max`` is the
        template's ``cutoff_radius``), its ``overrides`` are passed verbatim as full Hydra paths.
    layers, seed
        Interaction layers and training seed.
    corr
        The correlation loss of this run: the run-table row's ``corr_settings``
        (:func:`gnnff_stability.grid.method_settings`; ``None``: no correlation loss).
    training
        The ``training`` block.
    species
        The material's species in LAMMPS type order (``material.species``): the template's
        ``model_type_names`` (and so its ``chemical_species`` and every ``type_names``), in that order.
    files
        ``train``, ``valid``, ``test``: the extended-XYZ splits.
    run_dir
        nequip-train's output directory.
    """
    out = [
        f"hydra.run.dir={hydra_value(Path(run_dir).resolve())}",
        f"family={hydra_value(model.family)}",
        f"seed={int(seed)}",
        f"num_layers={int(layers)}",
        f"train_file={hydra_value(Path(files['train']).resolve())}",
        f"val_file={hydra_value(Path(files['valid']).resolve())}",
        f"test_file={hydra_value(Path(files['test']).resolve())}",
        f"model_type_names={hydra_value(_species(species))}",
        f"corr={hydra_value(None if corr is None else dict(corr))}",
        f"max_epochs={int(training.max_epochs)}",
        f"batch_size={int(training.batch_size)}",
        f"lr={hydra_value(float(training.lr))}",
        f"loss_coeffs.forces={hydra_value(float(training.loss_coeffs['forces']))}",
        f"loss_coeffs.total_energy={hydra_value(float(training.loss_coeffs['total_energy']))}",
        f"model_dtype={hydra_value(training.dtype)}",
        f"accelerator={ACCELERATORS[training.device]}",
    ]
    for key in sorted(model.hyper):
        out.append(f"{_TEMPLATE_KEY.get(key, key)}={hydra_value(model.hyper[key])}")
    for key, value in model.overrides.items():
        out.append(f"{key}={hydra_value(value)}")
    return out


def _species(species: Sequence[str]) -> list[str]:
    """``species`` as a list of symbols, refusing none or a bare string."""
    if isinstance(species, str) or not species:
        raise ValueError(f"species must be a non-empty list of chemical symbols (material.species), got {species!r}")
    return [str(s) for s in species]


def method_overrides(run: Mapping[str, Any], species: Sequence[str],
                     prefit: str | Path | None = None) -> list[str]:
    """Hydra overrides that switch a run's stabilisers on in any family's template.

    ``run`` is the run-table row (:func:`gnnff_stability.grid.expand_grid`): its flags ``sam``, ``prior``,
    ``decomposition`` and settings ``sam_settings``, ``decomposition_settings``. The correlation loss
    travels in the template's ``corr`` key (:func:`hydra_overrides`); here:

    - ``sam``: the training module becomes :data:`SAM_MODULE`, with ``training_module.sam`` holding
      the run's settings (unset keys: the module's defaults).
    - ``prior: zbl``: nequip's ZBL as ``training_module.model.pair_potential``
      (:func:`gnnff_stability.models.priors.zbl_overrides`, on ``species``: the material's, in type order).
    - ``decomposition``: the model's builder becomes :data:`DECOMPOSED_BUILDER`, wrapping the template's
      ``model_builder``, with the phase-1 file ``prefit`` (required; it carries the body-term settings)
      and ``freeze``.

    Returns ``[]`` for the baseline and for a correlation loss alone.
    """
    out: list[str] = []
    if run["sam"]:
        out += [f"training_module._target_={SAM_MODULE}",
                f"++training_module.sam={hydra_value(dict(run['sam_settings']))}"]
    if run["prior"] == "zbl":
        out += [f"{key}={hydra_value(value)}" for key, value in zbl_overrides(_species(species)).items()]
    if run["decomposition"]:
        if prefit is None:
            raise ValueError(f"method {run['method']!r} uses the decomposition: its phase-1 pre-fit file is required")
        dec = run["decomposition_settings"]
        out += [
            f"training_module.model._target_={DECOMPOSED_BUILDER}",
            "++training_module.model.gnn_builder=${model_builder}",
            f"++training_module.model.prefit={hydra_value(Path(prefit).resolve())}",
            f"++training_module.model.freeze={hydra_value(bool(dec['freeze']))}",
        ]  # the body-term settings travel in the pre-fit file (cutoffs resolved there)
    return out
