"""What strata checks before working: privileges, and the paths a build will write."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from strata.cli.preflight import check_context, check_destinations, check_file_destination
from strata.errors import PrivilegeError, UsageError
from strata.export.outputs import OutputSpec
from strata.privileges import CAP_SYS_ADMIN, effective_capabilities, require_privileges


def test_non_root_is_told_it_needs_root() -> None:
    with pytest.raises(PrivilegeError, match=r"strata build needs root: .*uid 1000"):
        require_privileges("strata build", euid=1000, caps=0)


def test_root_without_cap_sys_admin_is_told_which_capability() -> None:
    with pytest.raises(PrivilegeError, match="CAP_SYS_ADMIN"):
        require_privileges("strata run", euid=0, caps=(1 << CAP_SYS_ADMIN) - 1)
    require_privileges("strata run", euid=0, caps=1 << CAP_SYS_ADMIN)


def test_effective_capabilities_read_capeff(tmp_path: Path) -> None:
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t00000000a80425fb\n")
    assert effective_capabilities(status) == 0xA80425FB
    assert effective_capabilities(tmp_path / "missing") is None


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_stdout_outputs_are_refused_on_a_terminal_only() -> None:
    outputs = [OutputSpec(type="tar", dest="-")]
    with pytest.raises(UsageError, match="refusing to write to console"):
        check_destinations(outputs, iidfile=None, metadata_file=None, stdout=_Terminal())
    check_destinations(outputs, iidfile=None, metadata_file=None, stdout=io.StringIO())


def test_destinations_of_the_wrong_type(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="not a directory"):
        check_destinations(
            [OutputSpec(type="local", dest=str(tmp_path / "file"))],
            iidfile=None,
            metadata_file=None,
            stdout=io.StringIO(),
        )
    with pytest.raises(UsageError, match="is a directory"):
        check_file_destination(tmp_path, "--iidfile")
    with pytest.raises(UsageError, match="file is not a directory"):
        check_file_destination(tmp_path / "file" / "iid", "--iidfile")
    check_file_destination(tmp_path / "new" / "deeper" / "iid", "--iidfile")


@pytest.mark.parametrize(
    "context",
    ["https://github.com/o/r.git#main", "git://h/r", "git@github.com:o/r.git", "github.com/o/r"],
)
def test_remote_contexts_are_refused(context: str) -> None:
    with pytest.raises(UsageError, match="remote build contexts"):
        check_context(context)
    check_context("./local.git")
