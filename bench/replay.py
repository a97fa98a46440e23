"""History replay (P5): events per second replayed by ``referral-service replay-history`` (one process per
CPU), against the SDK's ``Replayer`` run in one process, over the same recorded corpus in the same run.

    .venv/bin/python -m bench.replay [--copies 20] [--rounds 3]

The corpus (tests/fixtures/histories, 9 histories) is copied ``--copies`` times under new names so a run
lasts long enough to measure. Both sides are timed as whole commands (interpreter start, imports, key ring
from the same settings file, parsing, replay), alternating, best round of each. Writes
bench/results/replay.json.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report import machine, write_result
from tests.conftest import TEST_KEY_RING
from tests.workflows.stories import HISTORIES

PYTHON = sys.executable
CLI = str(Path(sys.executable).parent / "referral-service")


def corpus_copies(folder: Path, copies: int) -> int:
    """``copies`` copies of every recorded history under ``folder``; returns the number of events in all."""
    events = 0
    for source in sorted(HISTORIES.glob("*.json")):
        text = source.read_text()
        events += copies * len(json.loads(text)["events"])
        for n in range(copies):
            (folder / f"{source.stem}-{n}.json").write_text(text)
    return events


def key_ring_settings(folder: Path) -> Path:
    """A settings file holding the test key ring the corpus is encrypted with (as the replay test writes it)."""
    config = folder / "service.toml"
    [(key_id, key)] = TEST_KEY_RING.keys.items()
    config.write_text(f'[codec]\nactive = "{key_id}"\n[codec.keys]\n"{key_id}" = "{base64.b64encode(key).decode()}"\n')
    return config


def timed(argv: list[str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, its child processes included) of one command, which must succeed.

    CPU over wall shows how much CPU the command got: with other jobs busy, the kernel's per-session
    scheduling (autogroup) caps this session's share however many processes it runs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)  # noqa: S603 (our own commands)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:3]} exited {done.returncode}: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def measure(copies: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        folder = Path(tmp)
        corpus = folder / "histories"
        corpus.mkdir()
        events = corpus_copies(corpus, copies)
        config = key_ring_settings(folder)
        command = [CLI, "--config", str(config), "replay-history", str(corpus)]
        baseline = [PYTHON, "-m", "bench.sdk_replayer", str(config), str(corpus)]
        sdk, ours = [], []
        for _ in range(rounds):
            sdk.append(timed(baseline))
            ours.append(timed(command))
    histories = copies * len(list(HISTORIES.glob("*.json")))
    sdk_best, our_best = min(sdk), min(ours)
    sdk_rate, our_rate = events / sdk_best[0], events / our_best[0]
    return {
        "figure": "P5 history replay",
        "histories": histories,
        "events": events,
        "rounds": rounds,
        "processes": len(os.sched_getaffinity(0)),
        "sdk_one_process_wall_cpu_s": sdk,
        "replay_history_wall_cpu_s": ours,
        "sdk_cpus_used": sdk_best[1] / sdk_best[0],
        "replay_history_cpus_used": our_best[1] / our_best[0],
        "sdk_events_per_s": sdk_rate,
        "replay_history_events_per_s": our_rate,
        "speedup": our_rate / sdk_rate,
        "goal": ">= 1.8x",
    }


def print_table(result: dict[str, Any]) -> None:
    print(
        f"P5 history replay: {result['histories']} histories, {result['events']:,} events, best of "
        f"{result['rounds']} (whole commands)"
    )
    print(f"  {'SDK Replayer, one process':<40} {result['sdk_events_per_s']:>8,.0f} events/s")
    print(
        f"  {'replay-history, ' + str(result['processes']) + ' processes':<40} "
        f"{result['replay_history_events_per_s']:>8,.0f} events/s"
    )
    print(
        f"  speedup {result['speedup']:.2f}x (goal {result['goal']}); CPUs the commands got: SDK "
        f"{result['sdk_cpus_used']:.2f}, replay-history {result['replay_history_cpus_used']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=20, help="copies of the recorded corpus to replay")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each side")
    args = parser.parse_args()
    result = measure(args.copies, args.rounds)
    print_table(result)
    write_result("replay", {"machine": machine(), **result})


if __name__ == "__main__":
    main()
