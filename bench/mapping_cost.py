"""Mapping cost: referral submissions parsed, validated and mapped per second, against ``json.loads`` of
the same bytes (the floor any intake pays), measured side by side in one run.

    .venv/bin/python -m bench.mapping_cost [--seconds 3]

Prints a table and writes bench/results/mapping_cost.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from fhir_mappings.referral_in import referral_from_fhir
from referral_service.programs import load_program
from tests.mappings.cast import CAST

RESULTS = Path(__file__).parent / "results"


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="wall time per measurement")
    args = parser.parse_args()
    program = load_program()
    rows = []
    fixtures = Path(__file__).parents[1] / "tests" / "fixtures" / "referrals"
    for member in CAST:
        raw = (fixtures / f"{member.name}.json").read_bytes()
        baseline = _rate(lambda raw=raw: json.loads(raw), args.seconds)
        mapped = _rate(
            lambda raw=raw: referral_from_fhir(json.loads(raw), source_id="bench", program_org=program.organization),
            args.seconds,
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
    print(f"{'referral':<34} {'bytes':>6} {'json.loads/s':>13} {'mapped/s':>9} {'x json.loads':>12}")
    for r in rows:
        print(
            f"{r['referral']:<34} {r['bytes']:>6} {r['json_loads_per_s']:>13,.0f} {r['mapped_per_s']:>9,.0f} "
            f"{r['cost_vs_json_loads']:>12.0f}"
        )
    median = statistics.median(r["cost_vs_json_loads"] for r in rows)
    print(f"median: mapping costs {median:.0f}x json.loads of the same bytes")
    RESULTS.mkdir(exist_ok=True)
    out = {"machine": platform.platform(), "python": platform.python_version(), "rows": rows, "median_ratio": median}
    (RESULTS / "mapping_cost.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
