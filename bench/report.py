"""The printed table: one row per measurement, columns aligned."""

from collections.abc import Sequence
from dataclasses import dataclass

COLUMNS = ("measurement", "N", "ops/s", "p50 ms", "p99 ms", "queries", "notes")
# Columns whose cells are numbers, right-aligned.
NUMERIC = frozenset({"N", "ops/s", "p50 ms", "p99 ms", "queries"})
DASH = "-"


@dataclass(frozen=True)
class Row:
    measurement: str
    n: int
    ops_per_second: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    queries: float | None = None
    notes: str = ""

    def cells(self) -> tuple[str, ...]:
        return (
            self.measurement,
            f"{self.n:,}",
            _number(self.ops_per_second, 1),
            _number(self.p50_ms, 2),
            _number(self.p99_ms, 2),
            _number(self.queries, 1 if self.queries is not None and self.queries % 1 else 0),
            self.notes,
        )


def _number(value: float | None, decimals: int) -> str:
    return DASH if value is None else f"{value:,.{decimals}f}"


def _widths(rows: Sequence[tuple[str, ...]]) -> list[int]:
    return [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]


def _line(cells: Sequence[str], widths: Sequence[int]) -> str:
    parts = [
        cell.rjust(width) if column in NUMERIC else cell.ljust(width)
        for column, cell, width in zip(COLUMNS, cells, widths, strict=True)
    ]
    return "  ".join(parts).rstrip()


def table(rows: Sequence[Row]) -> str:
    cells = [COLUMNS, *(row.cells() for row in rows)]
    widths = _widths(cells)
    rule = "  ".join("-" * width for width in widths)
    lines = [_line(COLUMNS, widths), rule, *(_line(row, widths) for row in cells[1:])]
    return "\n".join(lines)
