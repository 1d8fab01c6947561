"""How a number reads in every table of a report (markdown, HTML, matched rates), so they agree."""

from __future__ import annotations

import pandas as pd


def format_number(value: float, decimals: int, missing: str = "") -> str:
    """Rounded to ``decimals``; NaN (a metric a tile cannot have) as ``missing``; +inf (a lossless PSNR) as ``inf``."""
    if pd.isna(value):
        return missing
    return f"{value:.{decimals}f}"


def codec_calls_text(environment: dict | None) -> str | None:
    """Where the run's codec calls ran, as ``environment.json`` records it; None for a run that did not record it."""
    isolation = (environment or {}).get("isolation")
    if not isinstance(isolation, dict):
        return None
    if isolation.get("isolate") is False:
        return "in the run's process (timing.isolate: false): a codec that hung or crashed would have ended the run"
    timeout, breaker = isolation.get("timeout_s"), isolation.get("breaker_after")
    if isolation.get("isolate") is not True or not isinstance(timeout, (int, float)) or not isinstance(breaker, int):
        return None
    return (f"in a worker process, {timeout:g} s a call: a call without an answer is an error row, and a rate point "
            f"stops after {breaker} of them in a row")
