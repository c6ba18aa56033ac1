"""Which shell `--on-error=shell` opens for a failed RUN."""

from __future__ import annotations

from strata.solver.failed import shell_of


def test_shell_form_run_opens_the_stages_shell() -> None:
    assert shell_of(("/bin/sh", "-c", "make")) == "/bin/sh"
    assert shell_of(("/bin/bash", "-o", "pipefail", "-c", "make | tee log")) == "/bin/bash"


def test_exec_form_run_opens_bin_sh() -> None:
    assert shell_of(("make", "all")) == "/bin/sh"
    assert shell_of(("/usr/bin/false",)) == "/bin/sh"
    assert shell_of(("python3", "-c", "print(1)")) == "/bin/sh"  # not an absolute SHELL
