"""Settings objects from a partial configuration block, for tests (the library takes only typed settings).

:func:`partial` puts the block into a minimal campaign and validates it through
:func:`gnnff_stability.config.validate_config`, the only gate, so the schema fills every default and every
rule is checked as in a campaign; then ``cls.from_config`` builds the object, as a job does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, TypeVar

from gnnff_stability.config import validate_config

T = TypeVar("T")

_STUB = {
    "grid": {"model": ["stub"], "layers": {"stub": [1]}, "method": ["stub"]},
    "models": {"stub": {"family": "nequip"}},
    "methods": {"stub": {"corr": None}},
}


def block(path: str, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The validated block at dotted ``path`` (``"md"``, ``"md.hpc"``, ``"data.comb"``) with ``values`` set
    and the schema's defaults for the rest."""
    keys = path.split(".")
    config = copy.deepcopy(_STUB)
    node = config
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = copy.deepcopy(dict(values or {}))
    node = validate_config(config)
    for key in keys:
        node = node[key]
    return node


def partial(cls: type[T], values: Mapping[str, Any] | None = None) -> T:
    """``cls`` (a settings class with a ``block``) from the keys in ``values``; a settings object passes
    through unchanged."""
    if isinstance(values, cls):
        return values
    return cls.from_config(block(cls.block, values))  # type: ignore[attr-defined]
