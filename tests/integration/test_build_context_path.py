"""The context as users type it: `strata build .` from inside the project, relative paths."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.integration.guide_fixtures import STRATA, build_root, busybox_tarball, write_project

__all__ = ["build_root", "busybox_tarball"]

BIND_FROM_CONTEXT = """\
FROM busybox:strata-test
RUN --mount=type=bind,source=a.txt,target=/a.txt cat /a.txt
"""


def test_relative_context_works_with_bind_mounts(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "proj", BIND_FROM_CONTEXT, {"a.txt": "from the context\n"})
    for context, cwd in ((".", project), ("proj", tmp_path)):
        run = subprocess.run(
            [
                str(STRATA),
                "--root",
                str(build_root),
                "build",
                "--no-cache",
                "--progress=plain",
                context,
            ],
            cwd=cwd,
            capture_output=True,
            env=dict(os.environ, PROGRESS_NO_TRUNC="1"),
            timeout=300,
        )
        log = run.stderr.decode()
        assert run.returncode == 0, log
        assert "from the context" in log
