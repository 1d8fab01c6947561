"""How a number reads in every table of a report (markdown, HTML, matched rates), so they agree."""

from __future__ import annotations

import pandas as pd


def format_number(value: float, decimals: int, missing: str = "") -> str:
    """Rounded to ``decimals``; NaN (a metric a tile cannot have) as ``missing``; +inf (a lossless PSNR) as ``inf``."""
    if pd.isna(value):
        return missing
    return f"{value:.{decimals}f}"
