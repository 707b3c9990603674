"""The paper's published values, for side-by-side columns (``data`` transcribed in
``paper_reference.csv``, with the table and row of each value)."""

from __future__ import annotations

from importlib import resources
from io import StringIO
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PaperValues", "paper_reference"]


def paper_reference() -> pd.DataFrame:
    """The paper's published values (``report/paper_reference.csv``), as strings, '' where missing.

    Columns ``table, model, layers, method, ratio, temp_K, quantity, value, note``.
    """
    text = resources.files("gnnff_stability.report").joinpath("paper_reference.csv").read_text()
    return pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)


class PaperValues:
    """Look up one published value by table, model family, layers, paper row, quantity, ratio, T."""


    def __init__(self, ref: pd.DataFrame) -> None:
        self.ref = ref

    def value(self, table: str, model: str, layers: Any, method: str | None, quantity: str,
              ratio: str | None = None, temp_K: Any = None) -> Any:
        if method is None:
            return np.nan
        r = self.ref
        sel = (r["table"] == table) & (r["model"] == model) & (r["method"] == method) & (
            r["quantity"] == quantity)
        if layers is not None and not pd.isna(layers):
            sel &= (r["layers"] == "") | (r["layers"] == str(int(layers)))
        sel &= (r["ratio"] == (ratio or ""))
        if ratio:
            if temp_K is None or pd.isna(temp_K):
                return np.nan
            sel &= (r["temp_K"] == "") | (r["temp_K"] == str(int(temp_K)))
        hits = r.loc[sel, "value"]
        if hits.empty or hits.iloc[0] == "":
            return np.nan
        v = hits.iloc[0]
        try:
            return float(v)
        except ValueError:
            return v
