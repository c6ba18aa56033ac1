"""`--change` lines of `strata import` (like `docker import --change`): config edits.

Only the instructions that edit the image config are accepted: CMD, ENTRYPOINT, ENV,
EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR. This is a deliberately
small parser of its own (one line, JSON or shell-like words), not the Dockerfile
frontend: no variables, no continuation lines.
"""

from __future__ import annotations

import json
import posixpath
import shlex
from typing import Any

from strata.errors import UsageError, reraised_as

DEFAULT_SHELL = ["/bin/sh", "-c"]
CHANGE_INSTRUCTIONS = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Return a copy of the container config (`config["config"]` level) with changes applied."""
    result: dict[str, Any] = json.loads(json.dumps(config))
    for line in changes:
        # Name the option and the line: several --change flags may be given.
        with reraised_as(_fail, UsageError, prefix=f'invalid --change "{line.strip()}": '):
            _apply_one(result, line)
    return result


def _fail(message: str) -> UsageError:
    return UsageError(message, option="--change")


def _apply_one(config: dict[str, Any], line: str) -> None:
    stripped = line.strip()
    keyword, _, rest = stripped.partition(" ")
    instruction = keyword.upper()
    rest = rest.strip()
    if instruction not in CHANGE_INSTRUCTIONS:
        raise _fail(f"{keyword} is not a valid change command")
    if not rest:
        raise _fail(f"{instruction} requires at least one argument")
    if instruction in ("CMD", "ENTRYPOINT"):
        config["Cmd" if instruction == "CMD" else "Entrypoint"] = _exec_form(rest, shell=True)
        if instruction == "ENTRYPOINT":
            config.pop("Cmd", None)  # as in a Dockerfile: ENTRYPOINT resets CMD
    elif instruction == "ENV":
        env = list(config.get("Env") or [])
        for key, value in _pairs(rest, instruction, legacy_space_form=True):
            env = [e for e in env if e.partition("=")[0] != key] + [f"{key}={value}"]
        config["Env"] = env
    elif instruction == "LABEL":
        labels = dict(config.get("Labels") or {})
        for key, value in _pairs(rest, instruction, legacy_space_form=False):
            labels[key] = value
        config["Labels"] = labels
    elif instruction == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for port in _words(rest, instruction):
            number, _, proto = port.partition("/")
            if not number.replace("-", "").isdigit():
                raise _fail(f"invalid containerPort: {number}")
            ports[f"{number}/{(proto or 'tcp').lower()}"] = {}
        config["ExposedPorts"] = ports
    elif instruction == "VOLUME":
        volumes = dict(config.get("Volumes") or {})
        for volume in _exec_form(rest, shell=False):
            volumes[volume] = {}
        config["Volumes"] = volumes
    elif instruction == "WORKDIR":
        config["WorkingDir"] = posixpath.normpath(
            posixpath.join(config.get("WorkingDir") or "/", rest)
        )
    elif instruction == "USER":
        config["User"] = rest
    elif instruction == "STOPSIGNAL":
        config["StopSignal"] = rest
    elif instruction == "ONBUILD":
        config["OnBuild"] = [*(config.get("OnBuild") or []), rest]


def _exec_form(rest: str, *, shell: bool) -> list[str]:
    """A JSON string array, else the shell form (`/bin/sh -c <rest>`) or plain words."""
    if rest.startswith("["):
        try:
            value = json.loads(rest)
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return [*DEFAULT_SHELL, rest] if shell else rest.split()


def _words(rest: str, instruction: str) -> list[str]:
    try:
        return shlex.split(rest, posix=True)
    except ValueError as exc:
        raise _fail(f"{instruction}: {exc}") from exc


def _pairs(rest: str, instruction: str, *, legacy_space_form: bool) -> list[tuple[str, str]]:
    words = _words(rest, instruction)
    if legacy_space_form and "=" not in words[0]:
        key, _, value = rest.partition(" ")
        return [(key, value.strip())]
    pairs: list[tuple[str, str]] = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq or not key:
            raise _fail(f"{instruction} names must be followed by '=value': {word}")
        pairs.append((key, value))
    return pairs
