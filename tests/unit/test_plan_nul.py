"""A NUL byte in a path (COPY/ADD sources and destination, `COPY --from` paths, WORKDIR,
RUN --mount values), written or made by expansion, is a DockerfileError at its line,
not a ValueError from the first system call."""

from __future__ import annotations

import pytest

from strata.errors import DockerfileError
from tests.unit.test_plan_support import plan


@pytest.mark.parametrize(
    ("text", "message", "line"),
    [
        (
            "FROM busybox\nCOPY a\0b /x\n",
            'dockerfile parse error on line 2: COPY path "a\\x00b" contains a NUL byte',
            2,
        ),
        (
            "FROM busybox\nCOPY a /x\0y\n",
            'dockerfile parse error on line 2: COPY path "/x\\x00y" contains a NUL byte',
            2,
        ),
        (
            "FROM busybox\nADD a\0b /x\n",
            'dockerfile parse error on line 2: ADD path "a\\x00b" contains a NUL byte',
            2,
        ),
        (
            "FROM busybox AS s\nFROM busybox\nCOPY --from=s /bin\0x /x\n",
            'dockerfile parse error on line 3: COPY path "/bin\\x00x" contains a NUL byte',
            3,
        ),
        (
            "FROM busybox\nWORKDIR /a\0b\n",
            'dockerfile parse error on line 2: WORKDIR path "/a\\x00b" contains a NUL byte',
            2,
        ),
        (
            "FROM busybox\nRUN --mount=type=cache,target=/c\0d true\n",
            'dockerfile parse error on line 2: RUN --mount "type=cache,target=/c\\x00d" '
            "contains a NUL byte",
            2,
        ),
        # Made by expansion: reported at the line that uses the variable.
        (
            "FROM busybox\nARG P=/a\0b\nWORKDIR $P\n",
            'WORKDIR path "/a\\x00b" contains a NUL byte',
            3,
        ),
        ("FROM busybox\nARG P=/a\0b\nCOPY a $P\n", 'COPY path "/a\\x00b" contains a NUL byte', 3),
        ("FROM busybox\nARG P=/a\0b\nADD $P /x\n", 'ADD path "/a\\x00b" contains a NUL byte', 3),
        (
            "FROM busybox\nARG P=/a\0b\nRUN --mount=type=cache,target=$P true\n",
            'RUN --mount value "/a\\x00b" contains a NUL byte',
            3,
        ),
    ],
)
def test_nul_in_a_path_is_a_dockerfile_error_at_its_line(
    text: str, message: str, line: int
) -> None:
    with pytest.raises(DockerfileError) as caught:
        plan(text)
    assert caught.value.message == message
    assert caught.value.line == line
