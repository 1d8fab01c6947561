"""How a column is described: any column of a table the harness writes, a metric's columns, and the complexity
counts that are columns too.

``Column`` is the schema of ``results.csv`` (``harness.results``) and of the report's tables
(``harness.reporting.table_columns``). ``MetricColumn`` and ``Complexity`` are public types (``harness.MetricColumn``,
``harness.Complexity``, exported through ``harness.api``) that define columns of ``results.csv`` too
(``harness.results`` builds the header and ``metrics.json`` from them). They live here, below both modules, so that
the public contract and the results schema need not import each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """One column of a table the harness writes, declared once: the table's header, its text and required columns
    and its documentation derive from these declarations, so that no other module spells a column's name.

    ``type`` is what the values are: ``str`` columns are read as text whatever they hold (a tile id ``"001"`` or
    an error message must never become a number). ``unit`` is empty for labels, counts and ratios. ``required``:
    a report cannot do without the column (results from older versions may lack the others).
    """

    name: str
    type: type
    unit: str = ""
    description: str = ""
    required: bool = False


def column_names(columns: Iterable[Column]) -> tuple[str, ...]:
    return tuple(column.name for column in columns)


@dataclass(frozen=True)
class MetricColumn:
    """One result column a metric writes, described so that tables, figures and BD-rates need no list of names.

    ``label`` and ``unit`` make the table header (``PSNR (dB)``), ``decimals`` its rounding. A column whose
    direction is known sets ``higher_is_better``; one with none (a bias, best at 0) leaves it None. ``rd_plot``
    asks for a rate-distortion figure, whose quality axis reads ``axis`` (the label when empty) and shows
    ``ideal`` as a line; ``bd_rate`` for BD-rate rows against the anchor, which need a direction;
    ``headline`` for the short table the command line prints after a run. ``baseline`` names another column
    holding the same score for the original tile (a water map's IoU against ground truth, which the original does
    not reach either, so ``ideal`` says nothing): the RD figure draws its mean as a line to read the codecs against.
    """

    name: str
    label: str
    unit: str = ""
    decimals: int = 4
    higher_is_better: bool | None = None
    rd_plot: bool = False
    axis: str = ""
    ideal: float | None = None
    bd_rate: bool = False
    headline: bool = False
    baseline: str = ""

    def __post_init__(self) -> None:
        if self.bd_rate and self.higher_is_better is None:
            raise ValueError(f"metric column {self.name!r}: a BD-rate needs higher_is_better (True or False)")

    @property
    def header(self) -> str:
        """The column's name in tables: its label, with the unit in brackets when it has one."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    @property
    def axis_label(self) -> str:
        """The quality axis of its RD figure."""
        text = self.axis or self.label
        return f"{text} ({self.unit})" if self.unit else text


@dataclass(frozen=True)
class Complexity:
    """A codec's arithmetic, which unlike its speed does not depend on the machine: multiply-accumulates per
    pixel of a 256x256 tile for encode and decode, and its model's parameters. Each field is a results column."""

    encode_macs_per_pixel: float = field(metadata={"unit": "MAC/pixel"})
    decode_macs_per_pixel: float = field(metadata={"unit": "MAC/pixel"})
    parameters: int = field(metadata={"unit": ""})
