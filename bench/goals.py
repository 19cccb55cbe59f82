"""The goals of issue 9, and whether a run met them. Pure: unit tested in tests/bench."""

import operator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Goal:
    key: str
    op: str  # ">=", "<=", "=="
    target: Any
    note: str = ""


GOALS = (
    Goal("read_ratio", ">=", 0.8),
    Goal("pledge_ratio", ">=", 0.5),
    Goal("errors", "==", 0),
    Goal("hot_ratio", ">=", 0.8),
    Goal("hot_p99_ms", "<=", 150, "at 32 connections"),
    Goal("topup_ratio", ">=", 0.8),
    Goal("settle_s.100000", "<=", 3),
    Goal("settle_ratio", "<=", 2),
    Goal("settle_per_contributor_growth", "<=", 1.5, "per-contributor cost at 1,000,000 / at 100,000"),
    Goal("settle_peak_rss_mb", "<=", 100),
    Goal("settle_block_ms", "<=", 250),
    Goal("expiry_10k_s", "<=", 60),
    Goal("list_p50_ms", "<=", 25),
    Goal("home_p50_ms", "<=", 40),
    Goal("mission_page_p50_ms", "<=", 60),
    Goal("ledger_verify", "==", True),
)

_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq}


def lookup(results: dict, key: str) -> Any:
    """`results[a][b]` for "a.b"; None when any part is missing."""
    value: Any = results
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def per_contributor_growth(settle_s: dict) -> float | None:
    """(seconds per contributor at 1,000,000) / (at 100,000), or None without both."""
    small, large = settle_s.get("100000"), settle_s.get("1000000")
    if not small or large is None:
        return None
    return (large / 1_000_000) / (small / 100_000)


def check(goal: Goal, results: dict) -> str:
    """ "met", "missed" or "not measured"."""
    value = lookup(results, goal.key)
    if value is None:
        return "not measured"
    return "met" if _OPS[goal.op](value, goal.target) else "missed"


def goal_table(results: dict) -> list[tuple[str, str, Any, str]]:
    """(key, goal, figure, verdict) per goal."""
    rows = []
    for goal in GOALS:
        target = f"{goal.op} {goal.target}" + (f" ({goal.note})" if goal.note else "")
        rows.append((goal.key, target, lookup(results, goal.key), check(goal, results)))
    return rows
