"""The base of every settings class: a frozen view of one validated configuration block
(:mod:`gnnff_stability.settings`, :mod:`gnnff_stability.materials`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

__all__ = ["Section", "frozen_value", "plain_value"]

S = TypeVar("S", bound="Section")


def frozen_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: frozen_value(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(frozen_value(v) for v in value)
    return value


def plain_value(value: Any) -> Any:
    if isinstance(value, Section):
        return value.as_dict()
    if isinstance(value, Mapping):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [plain_value(v) for v in value]
    return value


@dataclass(frozen=True)
class Section:
    """A configuration block: one field per schema key, nested blocks as their own classes (a nested
    block the schema allows to be null stays ``None``)."""

    block: ClassVar[str] = ""
    nested: ClassVar[dict[str, type[Section]]] = {}

    @classmethod
    def from_config(cls: type[S], values: Mapping[str, Any]) -> S:
        """Build from the validated block (every key present; nothing is checked again)."""
        kwargs = {}
        for f in dataclasses.fields(cls):
            value = values[f.name]
            if f.name in cls.nested and value is not None:
                kwargs[f.name] = cls.nested[f.name].from_config(value)
            else:
                kwargs[f.name] = frozen_value(value)
        return cls(**kwargs)

    def as_dict(self) -> dict[str, Any]:
        """The block as plain Python values (for JSON and Hydra)."""
        return {f.name: plain_value(getattr(self, f.name)) for f in dataclasses.fields(self)}
