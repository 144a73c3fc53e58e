"""wrk's printed summary as numbers, read once for every bench that runs wrk (bench_rate, bench_scale,
bench_servers, bench_pygeoapi)."""
from __future__ import annotations

import re
from typing import TypedDict


class WrkSummary(TypedDict):
    """What one wrk run reports: rates, percentiles and the maximum in milliseconds, and its failures."""

    req_per_s: float
    requests: int
    p50: float
    p75: float
    p90: float
    p99: float
    max: float
    non_2xx: int
    socket_errors: int
    raw: str


def milliseconds(value: str, unit: str) -> float:
    """A wrk duration (``812.00us``, ``3.41ms``, ``1.02s``) in milliseconds."""
    v = float(value)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def parse(text: str) -> WrkSummary:
    """wrk's ``--latency`` output as numbers (nan for a figure it did not print, 0 for absent failures)."""
    def ms(pattern: str) -> float:
        m = re.search(pattern + r"\s+([\d.]+)(us|ms|s)\b", text, re.M)
        return milliseconds(m.group(1), m.group(2)) if m else float("nan")

    def number(pattern: str) -> float:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else float("nan")

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    requests = re.search(r"(\d+) requests in", text)
    return {"req_per_s": number(r"Requests/sec:\s+([\d.]+)"), "requests": int(requests.group(1)) if requests else 0,
            "p50": ms(r"^\s*50%"), "p75": ms(r"^\s*75%"), "p90": ms(r"^\s*90%"), "p99": ms(r"^\s*99%"),
            # "Latency   avg   stdev   max   +/- stdev": the third figure
            "max": ms(r"Latency\s+[\d.]+\w+\s+[\d.]+\w+"),
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0, "raw": text}
