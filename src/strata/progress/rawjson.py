"""The rawjson progress printer: one JSON `SolveStatus` object per line, per update.

For programs that follow a build. Field names and omission rules are those of
buildkit `client/graph.go` encoded by Go's `encoding/json` (what `--progress
rawjson` prints, util/progress/progressui/display.go): empty arrays and
`omitempty` fields are left out, byte fields (`data`, a warning's `short` and
`detail`) are base64, times are RFC 3339 in UTC with nanoseconds and trailing
zeros trimmed. strata adds `cacheMisses`: `[{"vertex", "reasons", "timestamp"}]`
with every reason, not only the first one the text printers show.
"""

from __future__ import annotations

import base64
import json
from typing import Any, TextIO

from strata.gotext import format_rfc3339_nano
from strata.progress.events import (
    CacheMiss,
    ProgressVertex,
    SolveStatus,
    VertexLog,
    VertexStatus,
    VertexWarning,
)
from strata.progress.protocol import FailedStep

# Go's encoder escapes these inside strings; they cannot occur outside strings.
_GO_ESCAPES = (
    ("<", "\\u003c"),
    (">", "\\u003e"),
    ("&", "\\u0026"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
)


def encode_line(value: dict[str, Any]) -> str:
    """Compact JSON as Go's json.Encoder writes it: UTF-8 kept, `<>&` and U+2028/9 escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    for char, escape in _GO_ESCAPES:
        text = text.replace(char, escape)
    return text + "\n"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def vertex_json(vertex: ProgressVertex) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if vertex.digest:
        out["digest"] = vertex.digest
    if vertex.inputs:
        out["inputs"] = list(vertex.inputs)
    if vertex.name:
        out["name"] = vertex.name
    if vertex.started is not None:
        out["started"] = format_rfc3339_nano(vertex.started)
    if vertex.completed is not None:
        out["completed"] = format_rfc3339_nano(vertex.completed)
    if vertex.cached:
        out["cached"] = True
    if vertex.error:
        out["error"] = vertex.error
    if vertex.progress_group is not None:
        group: dict[str, Any] = {}
        if vertex.progress_group.id:
            group["id"] = vertex.progress_group.id
        if vertex.progress_group.name:
            group["name"] = vertex.progress_group.name
        if vertex.progress_group.weak:
            group["weak"] = True
        out["progressGroup"] = group
    return out


def status_json(status: VertexStatus) -> dict[str, Any]:
    out: dict[str, Any] = {"id": status.id}
    if status.vertex:
        out["vertex"] = status.vertex
    if status.name:
        out["name"] = status.name
    if status.total:
        out["total"] = status.total
    out["current"] = status.current
    out["timestamp"] = format_rfc3339_nano(status.timestamp)
    if status.started is not None:
        out["started"] = format_rfc3339_nano(status.started)
    if status.completed is not None:
        out["completed"] = format_rfc3339_nano(status.completed)
    return out


def log_json(log: VertexLog) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if log.vertex:
        out["vertex"] = log.vertex
    if log.stream:
        out["stream"] = log.stream
    out["data"] = _b64(log.data)
    out["timestamp"] = format_rfc3339_nano(log.timestamp)
    return out


def warning_json(warning: VertexWarning) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if warning.vertex:
        out["vertex"] = warning.vertex
    if warning.level:
        out["level"] = warning.level
    if warning.short:
        out["short"] = _b64(warning.short.encode())
    if warning.detail:
        out["detail"] = [_b64(line.encode()) for line in warning.detail]
    if warning.url:
        out["url"] = warning.url
    if warning.source is not None:
        info: dict[str, Any] = {"filename": warning.source.filename}
        if warning.source.text is not None:
            info["data"] = _b64(warning.source.text.encode())
        info["language"] = "Dockerfile"
        out["sourceInfo"] = info
        out["range"] = [
            {
                "start": {"line": warning.source.start_line},
                "end": {"line": warning.source.end_line},
            }
        ]
    return out


def cache_miss_json(miss: CacheMiss) -> dict[str, Any]:
    return {
        "vertex": miss.vertex,
        "reasons": list(miss.reasons),
        "timestamp": format_rfc3339_nano(miss.timestamp),
    }


def solve_status_json(status: SolveStatus) -> dict[str, Any]:
    """The JSON object for one batch, BuildKit's keys in BuildKit's order."""
    out: dict[str, Any] = {}
    if status.vertexes:
        out["vertexes"] = [vertex_json(item) for item in status.vertexes]
    if status.statuses:
        out["statuses"] = [status_json(item) for item in status.statuses]
    if status.logs:
        out["logs"] = [log_json(item) for item in status.logs]
    if status.warnings:
        out["warnings"] = [warning_json(item) for item in status.warnings]
    if status.cache_misses:
        out["cacheMisses"] = [cache_miss_json(item) for item in status.cache_misses]
    return out


class RawJsonPrinter:
    """Writes every update as it comes; no failure report lines (BuildKit prints none)."""

    mode = "rawjson"

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def update(self, status: SolveStatus, now: float) -> None:
        self._stream.write(encode_line(solve_status_json(status)))

    def refresh(self, now: float) -> None:
        self._stream.flush()

    def done(self, now: float) -> None:
        self._stream.flush()

    def failed_steps(self) -> list[FailedStep]:
        return []
