"""A step's log shows what its process wrote, not the runtime's own report of a failure
(runc prints its fatal error on stderr after logging it; the executor raises the logged
one, or the step was cancelled and the report is noise)."""

from __future__ import annotations

import json
from pathlib import Path

from strata.worker.executor import without_runtime_report


def test_the_runtimes_report_is_left_out_and_the_process_output_kept(tmp_path: Path) -> None:
    log = tmp_path / "runtime.log"
    log.write_text(
        json.dumps({"level": "error", "msg": "runc run failed: container process is already dead"})
        + "\n"
    )
    got: list[bytes] = []
    sink = without_runtime_report(log, lambda stream, chunk, at: got.append(chunk))

    sink("stderr", b"from the step\n", 0.0)
    sink("stderr", b"runc run failed: container process is already dead\n", 0.0)

    assert got == [b"from the step\n"]


def test_without_a_logged_error_everything_passes(tmp_path: Path) -> None:
    got: list[bytes] = []
    sink = without_runtime_report(tmp_path / "absent.log", lambda s, c, a: got.append(c))

    sink("stderr", b"runc run failed: but nothing was logged\n", 0.0)

    assert got == [b"runc run failed: but nothing was logged\n"]
