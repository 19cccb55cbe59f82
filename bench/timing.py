"""Timing and query-counting helpers: nothing here knows about MissionHub."""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from django.db import connections
from django.test.utils import CaptureQueriesContext

T = TypeVar("T")


@dataclass(frozen=True)
class Timings:
    """Per-operation latencies (seconds) and the wall-clock time the batch took."""

    latencies: tuple[float, ...]
    wall: float

    @property
    def count(self) -> int:
        return len(self.latencies)

    @property
    def ops_per_second(self) -> float:
        return self.count / self.wall if self.wall else 0.0

    @property
    def max_ms(self) -> float:
        return max(self.latencies) * 1000

    def percentile_ms(self, pct: float) -> float:
        return percentile(self.latencies, pct) * 1000


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def time_one(operation: Callable[[], object]) -> float:
    start = time.perf_counter()
    operation()
    return time.perf_counter() - start


def time_each(operations: Sequence[Callable[[], object]]) -> Timings:
    """Run the operations one after the other, timing each and the whole batch."""
    start = time.perf_counter()
    latencies = tuple(time_one(operation) for operation in operations)
    return Timings(latencies=latencies, wall=time.perf_counter() - start)


@dataclass(frozen=True)
class QueryCount:
    default: int
    accounts: int

    @property
    def total(self) -> int:
        return self.default + self.accounts


def count_queries(operation: Callable[[], T]) -> tuple[QueryCount, T]:
    """Run `operation` once and count the SQL statements it sent to each database.

    Django keeps the last 9,000 statements per connection, so this is for one
    operation at a time, never for a whole timed batch.
    """
    with (
        CaptureQueriesContext(connections["default"]) as default,
        CaptureQueriesContext(connections["accounts"]) as accounts,
    ):
        result = operation()
    return QueryCount(default=len(default), accounts=len(accounts)), result


def queries_per_operation(operations: Sequence[Callable[[], object]]) -> float:
    """Average statements (both databases) per operation over a small, untimed sample."""
    counts = [count_queries(operation)[0].total for operation in operations]
    return sum(counts) / len(counts)
