"""What a real build prints: plain progress pinned line by line, and the other modes.

`strata build` runs as a subprocess (the installed CLI, stderr captured) over a
multi-stage project on a busybox base: first uncached, then fully cached, then after
one context file changed. The plain log is compared the way BuildKit's own tests
compare it (docs/buildkit-semantics.md §1.2-§1.5): `#N` numbers are only checked to
follow first appearance, durations (`DONE 0.1s`, a status' `0.0s`) and log-line
elapsed times are normalised after their format is checked, and independent stages,
whose order depends on timing, are compared vertex by vertex (a vertex may be printed
in several blocks when the printer switches between running steps; its lines are
joined back). Everything else is exact: headers, statuses, `CACHED`, `DONE`, the
blank line before each header, the exporter's statuses, the cache-miss lines.

Where strata's engine still differs from BuildKit the difference is pinned by its own
test marked `xfail(strict=True)` (the reason names the engine change), so this file
stays green now and turns red the moment the engine is fixed and the mark should go.
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strata.store.images import ImageStore
from strata.store.root import StateRoot
from tests.integration.guide_fixtures import (
    BUSYBOX_IMAGE,
    GUIDE,
    STRATA,
    build_root,
    busybox_tarball,
    python_image,
    strata,
    write_project,
)

__all__ = ["build_root", "busybox_tarball"]

BASE_REF = "docker.io/library/busybox:strata-test"

# -- reading a plain log -----------------------------------------------------------------

_NUMBERED = re.compile(r"#(\d+) (.*)")
_DONE = re.compile(r"DONE \d+\.\ds")
_LOG = re.compile(r"(\d+\.\d+) (.*)", re.DOTALL)
_STATUS_TIME = re.compile(r" \d+\.\ds done$")
OUTCOMES = ("CACHED", "DONE", "ERROR: ", "CANCELED")


def elapsed_is_well_formed(text: str) -> bool:
    """BuildKit's log prefix: 3 decimals below 10 s, 2 below 100 s, else 1 (§1.2)."""
    whole, _, fraction = text.partition(".")
    seconds = float(text)
    if seconds < 10:
        return len(whole) == 1 and len(fraction) == 3
    if seconds < 100:
        return len(whole) == 2 and len(fraction) == 2
    return len(fraction) == 1


def normalise(line: str) -> str:
    """One vertex line without `#N `, with its timing parts replaced.

    `DONE 0.1s` -> `DONE X.Xs`; `0.078 text` -> `<t> text` (after checking the elapsed
    format); a status' optional ` 0.0s` before `done` is dropped, since whether it
    shows depends on whether more than 10 ms passed.
    """
    if _DONE.fullmatch(line):
        return "DONE X.Xs"
    log = _LOG.fullmatch(line)
    if log is not None:
        assert elapsed_is_well_formed(log.group(1)), line
        return f"<t> {log.group(2)}"
    return _STATUS_TIME.sub(" done", line)


@dataclass
class PrintedVertex:
    """A vertex as the plain log showed it: its number, name and its lines, joined."""

    number: int
    name: str
    lines: list[str] = field(default_factory=list)
    first_header_at: int = 0  # index of the first header among all log lines
    outcome_at: int | None = None  # index of its CACHED / DONE / ERROR / CANCELED line


@dataclass
class PlainLog:
    """A plain progress log split into vertices, and whatever followed it."""

    text: str
    vertices: dict[str, PrintedVertex]  # by name, in order of first appearance
    blocks: list[str]  # the vertex name of each block, in print order
    tail: list[str]  # lines after the progress (failure report, ERROR line)

    def lines_of(self, name: str) -> list[str]:
        assert name in self.vertices, f"no vertex {name!r} in:\n{self.text}"
        return self.vertices[name].lines

    def names(self) -> list[str]:
        return list(self.vertices)


def read_plain(stderr: str) -> PlainLog:
    """Split `stderr` into vertices, checking the shape rules of §1.2/§1.3 on the way.

    Checked: the first line is a header; an empty line precedes every later header and
    appears nowhere else; inside a block every line carries the block's number; `#N ...`
    only ends a block; numbers are given 1, 2, 3... in order of first appearance and a
    number always names the same vertex. When printing returns to a vertex after
    `#N ...`, a partial output line that was cut off is printed again whole; the two
    copies are joined back into one.
    """
    assert stderr == "" or stderr.endswith("\n"), repr(stderr[-80:])
    lines = stderr.split("\n")[:-1]
    vertices: dict[str, PrintedVertex] = {}
    by_number: dict[int, PrintedVertex] = {}
    blocks: list[str] = []
    current: PrintedVertex | None = None
    expect_header = True
    switched_away: set[int] = set()
    tail: list[str] = []
    for index, line in enumerate(lines):
        if line == "":
            assert current is not None, f"empty line before any block at line {index + 1}"
            assert index + 1 < len(lines) and _NUMBERED.fullmatch(lines[index + 1]), (
                f"an empty line not followed by a header at line {index + 1}:\n{stderr}"
            )
            expect_header = True
            continue
        match = _NUMBERED.fullmatch(line)
        if match is None:
            tail = lines[index:]
            break
        number, text = int(match.group(1)), match.group(2)
        if expect_header:
            assert current is None or (index > 0 and lines[index - 1] == ""), (
                f"header without an empty line before it at line {index + 1}:\n{stderr}"
            )
            known = by_number.get(number)
            if known is None:
                assert number == len(by_number) + 1, f"#{number} out of order:\n{stderr}"
                assert text not in vertices, f"{text!r} printed under two numbers"
                known = PrintedVertex(number, text, first_header_at=index)
                by_number[number] = known
                vertices[text] = known
            assert known.name == text, f"#{number} renamed to {text!r}:\n{stderr}"
            current = known
            blocks.append(text)
            expect_header = False
            continue
        assert current is not None and number == current.number, (
            f"line of #{number} inside the block of #{current and current.number}:\n{stderr}"
        )
        if text == "...":
            assert index + 1 < len(lines) and lines[index + 1] == "", stderr
            switched_away.add(number)
            continue
        shown = normalise(text)
        if number in switched_away and current.lines:
            switched_away.discard(number)
            previous = current.lines[-1]
            if previous.startswith("<t> ") and shown.startswith(previous):
                current.lines[-1] = shown  # the cut-off partial line, printed whole again
                continue
        switched_away.discard(number)
        if shown.startswith(OUTCOMES):
            current.outcome_at = index
        current.lines.append(shown)
    return PlainLog(stderr, vertices, blocks, tail)


def logs_in_stream_order(
    lines: Sequence[str], stdout: Sequence[str], stderr: Sequence[str]
) -> bool:
    """`lines` are exactly these output lines, each stream's in its own order.

    A RUN's stdout and stderr reach strata through two pipes (BuildKit's too), so how
    lines of the two streams interleave is up to the scheduler; within a stream the
    order is kept.
    """
    wanted = [f"<t> {text}" for text in (*stdout, *stderr)]
    if sorted(lines) != sorted(wanted):
        return False
    for stream in (stdout, stderr):
        marked = [f"<t> {text}" for text in stream]
        if [line for line in lines if line in marked] != marked:
            return False
    return True


# -- the project ---------------------------------------------------------------------------

DOCKERFILE = f"""\
FROM {BUSYBOX_IMAGE} AS base
COPY greeting.txt /greeting.txt
RUN echo base > /base

FROM base AS left
COPY left.txt /left.txt
RUN echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3

FROM base AS right
RUN echo right > /right && printf 'right done\\nno newline at the end'

FROM base
COPY --from=left /left.txt /out/left.txt
COPY --from=right /right /out/right
"""

FILES = {
    "greeting.txt": "hello\n",
    "left.txt": "left\n",
    "ignored.txt": "not sent\n",
    ".dockerignore": "ignored.txt\n",
}

LOAD_DEFINITION = "[internal] load build definition from Dockerfile"
LOAD_METADATA = f"[internal] load metadata for {BASE_REF}"
LOAD_IGNORE = "[internal] load .dockerignore"
LOAD_CONTEXT = "[internal] load build context"
EXPORT = "exporting to image"
FROM_STEP = "[base 1/3] FROM {ref}@{digest}"
BASE_COPY = "[base 2/3] COPY greeting.txt /greeting.txt"
BASE_RUN = "[base 3/3] RUN echo base > /base"
LEFT_COPY = "[left 1/2] COPY left.txt /left.txt"
LEFT_RUN = "[left 2/2] RUN echo out1; echo err1 >&2; echo out2; echo err2 >&2; echo out3"
RIGHT_RUN = "[right 1/1] RUN echo right > /right && printf 'right done\\nno newline at the end'"
FINAL_LEFT = "[stage-3 1/2] COPY --from=left /left.txt /out/left.txt"
FINAL_RIGHT = "[stage-3 2/2] COPY --from=right /right /out/right"
TAG = "progress-demo:v1"
TAG_REF = "docker.io/library/progress-demo:v1"

# Which step each step waits for (its parent, and the stages a COPY --from reads).
INPUTS = {
    BASE_COPY: ("FROM",),
    BASE_RUN: (BASE_COPY,),
    LEFT_COPY: (BASE_RUN, LOAD_CONTEXT),
    LEFT_RUN: (LEFT_COPY,),
    RIGHT_RUN: (BASE_RUN,),
    FINAL_LEFT: (BASE_RUN, LEFT_RUN),
    FINAL_RIGHT: (FINAL_LEFT, RIGHT_RUN),
    EXPORT: (FINAL_RIGHT,),
}


@dataclass(frozen=True)
class Built:
    log: PlainLog
    image_id: str


def base_manifest(root: Path) -> str:
    state = StateRoot.open(root)
    try:
        digest = ImageStore(state).get(BASE_REF)
    finally:
        state.close()
    assert digest is not None
    return digest


def build_plain(root: Path, project: Path, *args: str) -> Built:
    iidfile = project.parent / "iid"
    run = strata(
        root, "build", "--progress=plain", "--iidfile", str(iidfile), "-t", TAG, *args, str(project)
    )
    stderr = run.stderr.decode()
    assert run.returncode == 0, stderr
    assert run.stdout == b""
    log = read_plain(stderr)
    assert log.tail == [], stderr
    return Built(log, iidfile.read_text())


def check_common_shape(built: Built, root: Path) -> str:
    """What every build of the project prints alike; returns the FROM step's name."""
    log = built.log
    dockerfile_size = len(DOCKERFILE.encode())
    from_step = FROM_STEP.format(ref=BASE_REF, digest=base_manifest(root))
    # The loads run one after the other before any step: always #1, #2, #3.
    assert log.names()[:3] == [LOAD_DEFINITION, LOAD_METADATA, LOAD_IGNORE], log.text
    assert log.blocks[:3] == [LOAD_DEFINITION, LOAD_METADATA, LOAD_IGNORE], log.text
    assert log.lines_of(LOAD_DEFINITION) == [
        f"transferring dockerfile: {dockerfile_size}B done",
        "DONE X.Xs",
    ]
    assert log.lines_of(LOAD_METADATA) == ["DONE X.Xs"]
    assert log.lines_of(LOAD_IGNORE) == ["transferring context: 12B done", "DONE X.Xs"]
    # The export comes last, once, after everything it needs.
    assert log.blocks[-1] == EXPORT and log.blocks.count(EXPORT) == 1, log.text
    assert log.lines_of(EXPORT) == [
        "exporting layers done",
        f"writing image {built.image_id} done",
        f"naming to {TAG_REF} done",
        "DONE X.Xs",
    ]
    assert set(log.names()) == {
        LOAD_DEFINITION,
        LOAD_METADATA,
        LOAD_IGNORE,
        LOAD_CONTEXT,
        from_step,
        BASE_COPY,
        BASE_RUN,
        LEFT_COPY,
        LEFT_RUN,
        RIGHT_RUN,
        FINAL_LEFT,
        FINAL_RIGHT,
        EXPORT,
    }, log.text
    # A step is shown only after what it builds on has finished.
    for step, needs in INPUTS.items():
        for need in needs:
            name = from_step if need == "FROM" else need
            finished = log.vertices[name].outcome_at
            assert finished is not None, name
            assert log.vertices[step].first_header_at > finished, (step, name, log.text)
    return from_step


def check_loaded_context(log: PlainLog, *, size: str | None) -> None:
    lines = log.lines_of(LOAD_CONTEXT)
    assert len(lines) == 2 and lines[1] == "DONE X.Xs", lines
    if size is not None:
        assert lines[0] == f"transferring context: {size} done", lines
    else:
        # How much is read again depends on what the digest cache could trust.
        assert re.fullmatch(r"transferring context: \d+(\.\d\d[kM])?B done", lines[0]), lines


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(tmp_path / "project", DOCKERFILE, FILES)


def test_uncached_cached_and_edited_builds_print_buildkits_plain_lines(
    build_root: Path, project: Path
) -> None:
    first = build_plain(build_root, project)
    log = first.log
    from_step = check_common_shape(first, build_root)
    # Everything COPY reads from the context: greeting.txt and left.txt, 11 bytes.
    check_loaded_context(log, size="11B")
    assert log.lines_of(from_step) == [
        f"resolve {BASE_REF}@{base_manifest(build_root)} done",
        "DONE X.Xs",
    ]
    for step in (BASE_COPY, BASE_RUN, LEFT_COPY, FINAL_LEFT, FINAL_RIGHT):
        assert log.lines_of(step) == ["DONE X.Xs"], (step, log.text)
    left = log.lines_of(LEFT_RUN)
    assert left[-1] == "DONE X.Xs"
    assert logs_in_stream_order(
        left[:-1], stdout=["out1", "out2", "out3"], stderr=["err1", "err2"]
    ), log.text
    # The last line has no newline: printed as it is, then the outcome on its own line.
    assert log.lines_of(RIGHT_RUN) == [
        "<t> right done",
        "<t> no newline at the end",
        "DONE X.Xs",
    ]
    assert "cache miss" not in log.text  # nothing was built before: nothing to explain

    second = build_plain(build_root, project)
    log = second.log
    from_step = check_common_shape(second, build_root)
    check_loaded_context(log, size=None)
    assert second.image_id == first.image_id
    # The FROM step's `resolve ... done` status is pinned by its own (xfail) test below.
    assert [line for line in log.lines_of(from_step) if not line.startswith("resolve ")] == [
        "CACHED"
    ]
    for step in (BASE_COPY, BASE_RUN, LEFT_COPY, LEFT_RUN, RIGHT_RUN, FINAL_LEFT, FINAL_RIGHT):
        assert log.lines_of(step) == ["CACHED"], (step, log.text)

    (project / "left.txt").write_text("left, edited\n")
    third = build_plain(build_root, project)
    log = third.log
    check_common_shape(third, build_root)
    check_loaded_context(log, size=None)
    assert third.image_id != first.image_id
    for step in (BASE_COPY, BASE_RUN, RIGHT_RUN):
        assert log.lines_of(step) == ["CACHED"], (step, log.text)
    assert log.lines_of(LEFT_COPY) == ["cache miss: file left.txt changed", "DONE X.Xs"]
    left = log.lines_of(LEFT_RUN)
    assert left[0] == "cache miss: parent step re-ran", log.text
    assert left[-1] == "DONE X.Xs"
    assert logs_in_stream_order(
        left[1:-1], stdout=["out1", "out2", "out3"], stderr=["err1", "err2"]
    ), log.text
    assert log.lines_of(FINAL_LEFT) == ["cache miss: file left.txt changed", "DONE X.Xs"]
    assert log.lines_of(FINAL_RIGHT) == ["cache miss: parent step re-ran", "DONE X.Xs"]


def test_no_cache_names_the_flag_on_every_forced_step_and_new_steps_explain_nothing(
    build_root: Path, project: Path
) -> None:
    build_plain(build_root, project)
    forced = build_plain(build_root, project, "--no-cache")
    log = forced.log
    from_step = check_common_shape(forced, build_root)
    # Pulling the base is not forced by --no-cache (§4.7): it stays CACHED.
    assert [line for line in log.lines_of(from_step) if not line.startswith("resolve ")] == [
        "CACHED"
    ]
    for step in (BASE_COPY, BASE_RUN, LEFT_COPY, FINAL_LEFT, FINAL_RIGHT):
        assert log.lines_of(step) == ["cache miss: --no-cache", "DONE X.Xs"], (step, log.text)
    assert log.lines_of(RIGHT_RUN) == [
        "cache miss: --no-cache",
        "<t> right done",
        "<t> no newline at the end",
        "DONE X.Xs",
    ]
    assert log.lines_of(LEFT_RUN)[0] == "cache miss: --no-cache"

    # One more step at the end: the earlier ones keep their keys (and show their new
    # step counts), the new one was never built, so nothing explains why it runs.
    (project / "Dockerfile").write_text(DOCKERFILE + "RUN echo new > /new\n")
    grown = strata(build_root, "build", "--progress=plain", str(project))
    log = read_plain(grown.stderr.decode())
    assert grown.returncode == 0, log.text
    assert log.lines_of(FINAL_LEFT.replace("1/2", "1/3")) == ["CACHED"]
    assert log.lines_of(FINAL_RIGHT.replace("2/2", "2/3")) == ["CACHED"]
    assert log.lines_of("[stage-3 3/3] RUN echo new > /new") == ["DONE X.Xs"]


def test_cached_base_image_still_prints_its_resolve_status(build_root: Path, project: Path) -> None:
    build_plain(build_root, project)
    again = build_plain(build_root, project)
    digest = base_manifest(build_root)
    from_step = FROM_STEP.format(ref=BASE_REF, digest=digest)
    assert again.log.lines_of(from_step) == [f"resolve {BASE_REF}@{digest} done", "CACHED"]


def test_naming_status_shows_the_tag_as_given_normalised(build_root: Path, tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", f"FROM {BUSYBOX_IMAGE}\nRUN echo hi > /hi\n")
    run = strata(build_root, "build", "--progress=plain", "-t", "demo", str(project))
    log = read_plain(run.stderr.decode())
    assert run.returncode == 0, log.text
    assert "naming to docker.io/library/demo done" in log.lines_of(EXPORT)


# -- the other progress modes ------------------------------------------------------------

VERTEX_FIELDS = {
    "digest",
    "inputs",
    "name",
    "started",
    "completed",
    "cached",
    "error",
    "progressGroup",
}
STATUS_FIELDS = {"id", "vertex", "name", "total", "current", "timestamp", "started", "completed"}
LOG_FIELDS = {"vertex", "stream", "data", "timestamp"}
WARNING_FIELDS = {"vertex", "level", "short", "detail", "url", "sourceInfo", "range"}
CACHE_MISS_FIELDS = {"vertex", "reasons", "timestamp"}
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def read_rawjson(stderr: bytes) -> list[dict[str, object]]:
    """Every line of `stderr` as one `SolveStatus` object, fields checked against
    buildkit client/graph.go (plus strata's `cacheMisses`)."""
    text = stderr.decode()
    assert text.endswith("\n"), text[-200:]
    updates: list[dict[str, object]] = []
    for line in text.split("\n")[:-1]:
        update = json.loads(line)
        assert isinstance(update, dict) and update, line
        assert set(update) <= {"vertexes", "statuses", "logs", "warnings", "cacheMisses"}, line
        for key, fields in (
            ("vertexes", VERTEX_FIELDS),
            ("statuses", STATUS_FIELDS),
            ("logs", LOG_FIELDS),
            ("warnings", WARNING_FIELDS),
            ("cacheMisses", CACHE_MISS_FIELDS),
        ):
            items = update.get(key, [])
            assert isinstance(items, list)
            if key in update:
                assert items, f"empty {key} array is left out in Go: {line}"
            for item in items:
                assert set(item) <= fields, (key, item)
        updates.append(update)
    return updates


def test_rawjson_prints_one_buildkit_solve_status_per_line(build_root: Path, project: Path) -> None:
    run = strata(build_root, "build", "--progress=rawjson", str(project))
    assert run.returncode == 0, run.stderr.decode()
    assert run.stdout == b""
    updates = read_rawjson(run.stderr)

    names: dict[str, str] = {}
    finished: dict[str, dict[str, object]] = {}
    output: dict[str, dict[int, bytes]] = {}
    for update in updates:
        for vertex in update.get("vertexes", []):  # type: ignore[union-attr]
            assert RFC3339.fullmatch(vertex["started"]), vertex
            names[vertex["digest"]] = vertex["name"]
            if "completed" in vertex:
                assert RFC3339.fullmatch(vertex["completed"]), vertex
                finished[vertex["name"]] = vertex
        for status in update.get("statuses", []):  # type: ignore[union-attr]
            assert {"id", "vertex", "current", "timestamp"} <= set(status), status
            assert status["vertex"] in names, status
        for log in update.get("logs", []):  # type: ignore[union-attr]
            assert {"vertex", "stream", "data", "timestamp"} <= set(log), log
            assert log["stream"] in (1, 2), log
            try:
                data = base64.b64decode(log["data"], validate=True)
            except binascii.Error as exc:
                raise AssertionError(f"log data is not base64: {log}") from exc
            streams = output.setdefault(names[log["vertex"]], {})
            streams[log["stream"]] = streams.get(log["stream"], b"") + data

    assert set(finished) >= {LOAD_DEFINITION, LEFT_RUN, RIGHT_RUN, EXPORT}
    assert not any(v.get("cached") or v.get("error") for v in finished.values())
    by_name = {name: digest for digest, name in names.items()}
    assert finished[FINAL_RIGHT]["inputs"] == [by_name[FINAL_LEFT], by_name[RIGHT_RUN]]
    assert output[LEFT_RUN] == {1: b"out1\nout2\nout3\n", 2: b"err1\nerr2\n"}
    assert output[RIGHT_RUN] == {1: b"right done\nno newline at the end"}

    (project / "left.txt").write_text("left, edited\n")
    again = strata(build_root, "build", "--progress=rawjson", str(project))
    assert again.returncode == 0, again.stderr.decode()
    updates = read_rawjson(again.stderr)
    cached = {
        vertex["name"]
        for update in updates
        for vertex in update.get("vertexes", [])  # type: ignore[union-attr]
        if vertex.get("cached")
    }
    assert {BASE_COPY, BASE_RUN, RIGHT_RUN} <= cached
    assert LEFT_COPY not in cached
    misses = [
        miss
        for update in updates
        for miss in update.get("cacheMisses", [])  # type: ignore[union-attr]
    ]
    assert {"file left.txt changed", "parent step re-ran"} <= {
        reason
        for miss in misses
        for reason in miss["reasons"]  # type: ignore[index]
    }


def test_quiet_flag_prints_only_the_image_id_on_stdout(build_root: Path, project: Path) -> None:
    run = strata(build_root, "build", "-q", "--iidfile", str(project.parent / "iid"), str(project))
    assert run.returncode == 0, run.stderr.decode()
    assert run.stderr == b""
    image_id = (project.parent / "iid").read_text()
    assert run.stdout.decode() == image_id + "\n"


def test_progress_none_prints_nothing_at_all(build_root: Path, project: Path) -> None:
    run = strata(build_root, "build", "--progress=none", str(project))
    assert run.returncode == 0, run.stderr.decode()
    assert (run.stdout, run.stderr) == (b"", b"")


def test_progress_quiet_prints_only_the_image_id_on_stdout(build_root: Path, project: Path) -> None:
    run = strata(build_root, "build", "--progress=quiet", str(project))
    assert run.returncode == 0, run.stderr.decode()
    assert run.stderr == b""
    assert re.fullmatch(rb"sha256:[0-9a-f]{64}\n", run.stdout), run.stdout


def test_quiet_flag_with_another_progress_mode_is_refused(build_root: Path, project: Path) -> None:
    run = strata(build_root, "build", "-q", "--progress=plain", str(project))
    assert run.returncode == 1
    assert run.stderr.decode() == "ERROR: progress=plain and quiet cannot be used together\n"


def test_unknown_progress_mode_is_refused_before_building(build_root: Path, project: Path) -> None:
    run = strata(build_root, "build", "--progress=bogus", str(project))
    assert run.returncode == 1
    assert run.stderr.decode() == "ERROR: invalid progress mode bogus\n"
    assert run.stdout == b""


def test_tty_mode_without_a_terminal_is_buildkits_console_error(
    build_root: Path, project: Path
) -> None:
    run = strata(build_root, "build", "--progress=tty", str(project))
    assert run.returncode == 1
    assert run.stderr.decode() == ("ERROR: failed to get console: provided file is not a console\n")


def run_on_terminal(args: Sequence[str], *, columns: int = 120) -> tuple[int, bytes, bytes]:
    """Run with stderr on a new pseudo-terminal; (exit code, stdout, terminal bytes)."""
    primary, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    try:
        proc = subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=secondary,
            env=dict(os.environ, TERM="xterm"),
        )
    finally:
        os.close(secondary)
    screen = b""
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            screen += chunk
        assert proc.stdout is not None
        stdout = proc.stdout.read()
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        os.close(primary)
    return code, stdout, screen


_ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def test_tty_mode_on_a_terminal_draws_buildkits_screen(build_root: Path, project: Path) -> None:
    code, stdout, screen = run_on_terminal(
        [str(STRATA), "--root", str(build_root), "build", "--progress=tty", str(project)]
    )
    text = _ANSI.sub(b"", screen).decode().replace("\r", "")
    assert code == 0, text
    assert stdout == b""
    assert text.startswith("[+] Building "), text[:200]
    # The final redraw: every vertex done, each a ` => ` row with its time at the right.
    final = text[text.rindex("[+] Building ") :]
    header = final.split("\n", 1)[0]
    assert re.fullmatch(r"\[\+\] Building \d+\.\ds \((\d+)/\1\) FINISHED *", header), header
    rows = [row.rstrip() for row in final.split("\n")[1:] if row.strip()]
    assert any(re.fullmatch(rf" => {re.escape(LOAD_DEFINITION)} +\d+\.\ds", r) for r in rows)
    assert any(re.fullmatch(r" => => transferring dockerfile: \d+B +\d+\.\ds", r) for r in rows)
    assert any(re.fullmatch(rf" => {re.escape(EXPORT)} +\d+\.\ds", r) for r in rows), rows
    assert any(r.startswith(" => [left 2/2] RUN echo out1") for r in rows), rows


# -- the guide's grep --------------------------------------------------------------------

_GREPPED = re.compile(r"#(\d+) (\d+\.\d+) (.*)")


def awk(pattern: str, log_file: Path) -> list[str]:
    """`awk '/pattern/' log.txt`, the way Docker's build guide reads a plain log."""
    run = subprocess.run(["awk", f"/{pattern}/", str(log_file)], capture_output=True, check=True)
    return run.stdout.decode().splitlines()


def check_grepped(lines: Sequence[str], word: str) -> list[str]:
    """Each line is `#<n> <elapsed> <text>` with BuildKit's elapsed format; the texts."""
    texts = []
    for line in lines:
        match = _GREPPED.fullmatch(line)
        assert match is not None, line
        assert elapsed_is_well_formed(match.group(2)), line
        assert word in match.group(3), line
        texts.append(match.group(3))
    return texts


def test_awk_over_a_plain_log_finds_numbered_timed_output_lines(
    build_root: Path, tmp_path: Path
) -> None:
    dockerfile = (
        f"FROM {BUSYBOX_IMAGE}\n"
        # the word is assembled at run time so that only output lines contain it
        'RUN w=Download; for p in alpha beta gamma; do echo "  ${w}ing $p-1.0.tar.gz"; done\n'
    )
    project = write_project(tmp_path / "p", dockerfile)
    run = strata(build_root, "build", "--progress=plain", str(project))
    assert run.returncode == 0, run.stderr.decode()
    log_file = tmp_path / "log.txt"
    log_file.write_bytes(run.stderr)
    texts = check_grepped(awk("Downloading", log_file), "Downloading")
    assert texts == [f"  Downloading {p}-1.0.tar.gz" for p in ("alpha", "beta", "gamma")]
    step = read_plain(run.stderr.decode()).vertices[
        '[2/2] RUN w=Download; for p in alpha beta gamma; do echo "  ${w}ing $p-1.0.tar.gz"; done'
    ]
    # The grepped lines carry the number of the step that printed them.
    numbers = {_GREPPED.fullmatch(line).group(1) for line in awk("Downloading", log_file)}  # type: ignore[union-attr]
    assert numbers == {str(step.number)}


def test_awk_over_the_guides_first_step_finds_its_downloads(tmp_path: Path) -> None:
    root = tmp_path / "root"
    python_image(root)
    project = tmp_path / "guide"
    subprocess.run(["cp", "-r", str(GUIDE), str(project)], check=True)
    run = strata(root, "build", "--target=base", "--progress=plain", str(project))
    assert run.returncode == 0, run.stderr.decode()
    log_file = tmp_path / "log.txt"
    log_file.write_bytes(run.stderr)
    texts = check_grepped(awk("Downloading", log_file), "Downloading")
    assert sorted(t.split("/packages/")[1].split("-")[0] for t in texts) == [
        "banner",
        "greetings",
        "palette",
    ]


# -- warnings ------------------------------------------------------------------------------

LINT_DOCKERFILE = f"FROM {BUSYBOX_IMAGE} as base\nCMD echo hi\n"
LINT_WARNINGS = (
    "FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
    "JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended "
    "behavior related to OS signals (line 2)",
)
# buildx commands/build.go printWarnings: the count line is wrapped in yellow, newline
# included, even when stderr is not a terminal; strata has no `docker` to name in the hint.
WARNING_SUMMARY = "\n \x1b[33m2 warnings found (use --debug to expand):\n\x1b[0m" + "".join(
    f" - {text}\n" for text in LINT_WARNINGS
)


def test_lint_warnings_show_in_the_definition_load_and_in_the_summary(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", LINT_DOCKERFILE)
    run = strata(build_root, "build", "--progress=plain", str(project))
    stderr = run.stderr.decode()
    assert run.returncode == 0, stderr
    assert stderr.endswith(WARNING_SUMMARY), stderr
    log = read_plain(stderr.removesuffix(WARNING_SUMMARY))
    size = len(LINT_DOCKERFILE.encode())
    # BuildKit's printer shows `#1 WARN:` only if #1 is printed after the warnings
    # arrived (they do not schedule a print of their own); both come within one refresh
    # when parsing is quick, which is what real BuildKit logs show.
    shown = log.lines_of(LOAD_DEFINITION)
    assert shown in (
        [f"transferring dockerfile: {size}B done", "DONE X.Xs"],
        [
            f"transferring dockerfile: {size}B done",
            *(f"WARN: {text}" for text in LINT_WARNINGS),
            "DONE X.Xs",
        ],
    ), stderr


def test_rawjson_and_quiet_builds_print_no_warning_summary(
    build_root: Path, tmp_path: Path
) -> None:
    project = write_project(tmp_path / "p", LINT_DOCKERFILE)
    raw = strata(build_root, "build", "--progress=rawjson", str(project))
    assert raw.returncode == 0, raw.stderr.decode()
    warnings = [
        base64.b64decode(warning["short"]).decode()
        for update in read_rawjson(raw.stderr)
        for warning in update.get("warnings", [])  # type: ignore[union-attr]
    ]
    assert warnings == list(LINT_WARNINGS)
    quiet = strata(build_root, "build", "-q", str(project))
    assert quiet.returncode == 0
    assert quiet.stderr == b""


# -- a partial line is shown while the step still runs ------------------------------------

GATE_WAIT_TENTHS = 100  # the step gives up waiting after 10 s and finishes anyway
# `#N <elapsed> waiting for the gate` not (yet) followed by the rest of its line; the
# step's header holds the same words, but not after an elapsed time.
UNFINISHED_GATE_LINE = re.compile(rb"#\d+ \d+\.\d+ waiting for the gate(?! \.\.\. open)")


def test_partial_output_line_is_shown_before_the_step_finishes(
    build_root: Path, tmp_path: Path
) -> None:
    """A line without its newline yet (`printf 'waiting... '`) is on screen at once.

    The step prints a partial line and waits for a file the test creates in its cache
    mount only after seeing that text on strata's stderr; the line's end follows
    without a new prefix (§1.2). No timing is measured: the gate either opens because
    the text was shown, or the step's own guard runs out and the test fails.
    """
    dockerfile = (
        f"FROM {BUSYBOX_IMAGE}\n"
        "RUN --mount=type=cache,id=gate,target=/gate printf 'waiting for the gate'; "
        f"i=0; until [ -e /gate/open ]; do i=$((i+1)); [ $i -le {GATE_WAIT_TENTHS} ] || break; "
        "sleep 0.1; done; echo ' ... open'\n"
    )
    project = write_project(tmp_path / "p", dockerfile)
    proc = subprocess.Popen(
        [str(STRATA), "--root", str(build_root), "build", "--progress=plain", str(project)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PROGRESS_NO_TRUNC="1"),
    )
    assert proc.stderr is not None
    received = b""
    opened_on_sight = False
    try:
        fd = proc.stderr.fileno()
        while True:
            ready, _, _ = select.select([fd], [], [], 1.0)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            received += chunk
            # the output line on screen, still unfinished: the step is waiting for us
            if UNFINISHED_GATE_LINE.search(received) and not opened_on_sight:
                for cache in (build_root / "cachemounts").glob("[0-9]*/data"):
                    (cache / "open").touch()
                opened_on_sight = True
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    stderr = received.decode()
    assert code == 0, stderr
    assert opened_on_sight, f"the partial line appeared only when the step ended:\n{stderr}"
    step = (
        "[stage-0 2/2] RUN --mount=type=cache,id=gate,target=/gate printf 'waiting for the "
        "gate'; i=0; until [ -e /gate/open ]; do i=$((i+1)); "
        f"[ $i -le {GATE_WAIT_TENTHS} ] || break; sleep 0.1; done; echo ' ... open'"
    )
    assert read_plain(stderr).lines_of(step) == [
        "<t> waiting for the gate ... open",
        "DONE X.Xs",
    ]
