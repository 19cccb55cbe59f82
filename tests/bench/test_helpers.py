"""The HTTP bench's pure helpers: wrk's report parsed, its Lua script, the goal checks."""

import pytest

from bench import goals, wrk

REPORT = """Running 4s test @ http://127.0.0.1:40000
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    25.00ms   10.00ms 200.00ms   90.00%
  Latency Distribution
     50%  812.00us
     75%    1.20ms
     90%    1.50s
     99%    2.10m
  1234 requests in 4.00s, 1.00MB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:    308.50
Transfer/sec:      1.00MB
"""


def test_parse_reads_rate_latency_units_and_errors():
    result = wrk.parse(REPORT)
    assert result.requests == 1234
    assert result.rps == 308.5
    assert result.p50_ms == pytest.approx(0.812)
    assert result.p99_ms == pytest.approx(126_000)
    assert result.non_2xx == 7
    assert result.socket_errors == 6


def test_parse_without_errors_counts_none():
    clean = "\n".join(line for line in REPORT.splitlines() if "errors" not in line and "Non-2xx" not in line)
    result = wrk.parse(clean)
    assert (result.non_2xx, result.socket_errors) == (0, 0)


def test_parse_refuses_what_is_not_a_latency_report():
    with pytest.raises(ValueError, match="not a wrk"):
        wrk.parse("unable to connect to 127.0.0.1:1 Connection refused")


def test_lua_script_carries_paths_tokens_and_a_json_body():
    script = wrk.lua_script(paths=["/api/missions/1/pledges"], tokens=["t1", "t2"], method="POST", body={"amount": 100})
    assert 'local tokens = {"t1","t2"}' in script
    assert 'local method = "POST"' in script
    assert 'local body = "{\\"amount\\": 100}"' in script


def test_lua_script_needs_a_path():
    with pytest.raises(ValueError, match="at least one path"):
        wrk.lua_script(paths=[])


def test_goal_met_missed_and_not_measured():
    results = {"read_ratio": 0.9, "pledge_ratio": 0.1, "errors": 0, "settle_s": {"100000": 2.5}}
    verdicts = {key: verdict for key, _, _, verdict in goals.goal_table(results)}
    assert verdicts["read_ratio"] == "met"
    assert verdicts["pledge_ratio"] == "missed"
    assert verdicts["errors"] == "met"
    assert verdicts["settle_s.100000"] == "met"
    assert verdicts["expiry_10k_s"] == "not measured"


def test_per_contributor_growth():
    assert goals.per_contributor_growth({"100000": 2.0, "1000000": 30.0}) == pytest.approx(1.5)
    assert goals.per_contributor_growth({"100000": 2.0, "1000000": None}) is None
