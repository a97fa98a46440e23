"""Mapping cost: referral submissions parsed, validated and mapped per second, against ``json.loads`` of
the same bytes (the floor any intake pays), measured side by side in one run.

    .venv/bin/python -m bench.mapping_cost [--seconds 3]

Prints a table and writes bench/results/mapping_cost.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.report import machine, write_result
from fhir_mappings.referral_in import referral_from_fhir
from referral_service.programs import load_program
from tests.mappings.cast import CAST


def _rate(work: Callable[[], object], seconds: float) -> float:
    """Calls per second over ``seconds`` of wall time, best of three rounds (noise only slows a round)."""
    rates = []
    for _ in range(3):
        calls, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 3:
            work()
            calls += 1
        rates.append(calls / elapsed)
    return max(rates)


def measure(seconds: float) -> dict[str, Any]:
    program = load_program()
    rows = []
    fixtures = Path(__file__).parents[1] / "tests" / "fixtures" / "referrals"
    for member in CAST:
        raw = (fixtures / f"{member.name}.json").read_bytes()
        baseline = _rate(lambda raw=raw: json.loads(raw), seconds)
        mapped = _rate(
            lambda raw=raw: referral_from_fhir(json.loads(raw), source_id="bench", program_org=program.organization),
            seconds,
        )
        rows.append(
            {
                "referral": member.name,
                "bytes": len(raw),
                "json_loads_per_s": baseline,
                "mapped_per_s": mapped,
                "cost_vs_json_loads": baseline / mapped,
            }
        )
    median = statistics.median(r["cost_vs_json_loads"] for r in rows)
    return {"figure": "mapping cost", "rows": rows, "median_ratio": median}


def print_table(result: dict[str, Any]) -> None:
    print(f"{'referral':<34} {'bytes':>6} {'json.loads/s':>13} {'mapped/s':>9} {'x json.loads':>12}")
    for r in result["rows"]:
        print(
            f"{r['referral']:<34} {r['bytes']:>6} {r['json_loads_per_s']:>13,.0f} {r['mapped_per_s']:>9,.0f} "
            f"{r['cost_vs_json_loads']:>12.0f}"
        )
    print(f"median: mapping costs {result['median_ratio']:.0f}x json.loads of the same bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time per measurement")
    args = parser.parse_args()
    result = measure(args.seconds)
    print_table(result)
    write_result("mapping_cost", {"machine": machine(), **result})


if __name__ == "__main__":
    main()
