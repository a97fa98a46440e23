"""The replay baseline: the SDK's ``Replayer`` in one process, with the worker's workflows, sandbox and codec,
over every history file in a folder, in order (``bench.replay`` times it as a whole command).

    .venv/bin/python -m bench.sdk_replayer CONFIG CORPUS
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from referral_service.codec import data_converter
from referral_service.config import load_settings
from referral_service.worker import PASSTHROUGH_MODULES
from workflows.referral import ReferralWorkflow


async def replay(config: Path, files: list[Path]) -> int:
    async def histories() -> AsyncIterator[WorkflowHistory]:
        for path in files:
            yield WorkflowHistory.from_json(path.stem, path.read_text())

    runner = SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )
    replayer = Replayer(
        workflows=[ReferralWorkflow],
        workflow_runner=runner,
        data_converter=data_converter(load_settings(config).key_ring()),
    )
    results = await replayer.replay_workflows(histories(), raise_on_replay_failure=False)
    return len(results.replay_failures)


if __name__ == "__main__":
    failed = asyncio.run(replay(Path(sys.argv[1]), sorted(Path(sys.argv[2]).glob("*.json"))))
    print(f"{failed} failed", flush=True)
    os._exit(1 if failed else 0)  # the Temporal runtime can abort at interpreter exit (sdk-python #300)
