"""The Dockerfile frontend: parse, expand, type instructions, group stages, filter context.

This is the surface the planner and the CLI use; the modules behind it may move.
Names are exported lazily (PEP 562 `__getattr__`): importing `strata.dockerfile.parser`
does not load the outline or the stages, and `_LAZY` says which module owns each name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from strata.errors import InstructionError, MountError, ShellError, UnknownTargetError

if TYPE_CHECKING:
    from strata.dockerfile.ast import Dockerfile, Heredoc, Node, ParseWarning
    from strata.dockerfile.ignore import PatternMatcher, find_ignore_file, read_ignore_patterns
    from strata.dockerfile.instructions import (
        AddInstruction,
        ArgDefinition,
        ArgInstruction,
        CmdInstruction,
        CopyInstruction,
        Device,
        EntrypointInstruction,
        EnvInstruction,
        ExposeInstruction,
        FromInstruction,
        HealthcheckInstruction,
        Instruction,
        KeyValue,
        LabelInstruction,
        Location,
        MaintainerInstruction,
        OnbuildInstruction,
        RunInstruction,
        ShellInstruction,
        SourceContent,
        StopsignalInstruction,
        UserInstruction,
        VolumeInstruction,
        WorkdirInstruction,
        parse_instruction,
        parse_trigger,
    )
    from strata.dockerfile.mounts import (
        BindMount,
        CacheMount,
        Mount,
        SecretMount,
        SshMount,
        TmpfsMount,
        mount_from,
        parse_mount,
    )
    from strata.dockerfile.outline import (
        ImageEnv,
        Outline,
        Target,
        build_outline,
        list_targets,
        render_call,
    )
    from strata.dockerfile.parser import parse
    from strata.dockerfile.shell import ShellLex, expand, expand_words
    from strata.dockerfile.stages import (
        BuildDefinition,
        Dependency,
        GlobalArgs,
        MetaArg,
        Stage,
        parse_stages,
        predefined_args,
    )

_LAZY: dict[str, str] = {
    "AddInstruction": "strata.dockerfile.instructions",
    "ArgDefinition": "strata.dockerfile.instructions",
    "ArgInstruction": "strata.dockerfile.instructions",
    "BindMount": "strata.dockerfile.mounts",
    "BuildDefinition": "strata.dockerfile.stages",
    "CacheMount": "strata.dockerfile.mounts",
    "CmdInstruction": "strata.dockerfile.instructions",
    "CopyInstruction": "strata.dockerfile.instructions",
    "Dependency": "strata.dockerfile.stages",
    "Device": "strata.dockerfile.instructions",
    "Dockerfile": "strata.dockerfile.ast",
    "EntrypointInstruction": "strata.dockerfile.instructions",
    "EnvInstruction": "strata.dockerfile.instructions",
    "ExposeInstruction": "strata.dockerfile.instructions",
    "FromInstruction": "strata.dockerfile.instructions",
    "GlobalArgs": "strata.dockerfile.stages",
    "HealthcheckInstruction": "strata.dockerfile.instructions",
    "Heredoc": "strata.dockerfile.ast",
    "ImageEnv": "strata.dockerfile.outline",
    "Instruction": "strata.dockerfile.instructions",
    "KeyValue": "strata.dockerfile.instructions",
    "LabelInstruction": "strata.dockerfile.instructions",
    "Location": "strata.dockerfile.instructions",
    "MaintainerInstruction": "strata.dockerfile.instructions",
    "MetaArg": "strata.dockerfile.stages",
    "Mount": "strata.dockerfile.mounts",
    "Node": "strata.dockerfile.ast",
    "OnbuildInstruction": "strata.dockerfile.instructions",
    "Outline": "strata.dockerfile.outline",
    "ParseWarning": "strata.dockerfile.ast",
    "PatternMatcher": "strata.dockerfile.ignore",
    "RunInstruction": "strata.dockerfile.instructions",
    "SecretMount": "strata.dockerfile.mounts",
    "ShellInstruction": "strata.dockerfile.instructions",
    "ShellLex": "strata.dockerfile.shell",
    "SourceContent": "strata.dockerfile.instructions",
    "SshMount": "strata.dockerfile.mounts",
    "Stage": "strata.dockerfile.stages",
    "StopsignalInstruction": "strata.dockerfile.instructions",
    "Target": "strata.dockerfile.outline",
    "TmpfsMount": "strata.dockerfile.mounts",
    "UserInstruction": "strata.dockerfile.instructions",
    "VolumeInstruction": "strata.dockerfile.instructions",
    "WorkdirInstruction": "strata.dockerfile.instructions",
    "build_outline": "strata.dockerfile.outline",
    "expand": "strata.dockerfile.shell",
    "expand_words": "strata.dockerfile.shell",
    "find_ignore_file": "strata.dockerfile.ignore",
    "list_targets": "strata.dockerfile.outline",
    "mount_from": "strata.dockerfile.mounts",
    "parse": "strata.dockerfile.parser",
    "parse_instruction": "strata.dockerfile.instructions",
    "parse_mount": "strata.dockerfile.mounts",
    "parse_stages": "strata.dockerfile.stages",
    "parse_trigger": "strata.dockerfile.instructions",
    "predefined_args": "strata.dockerfile.stages",
    "read_ignore_patterns": "strata.dockerfile.ignore",
    "render_call": "strata.dockerfile.outline",
}

__all__ = [
    "AddInstruction",
    "ArgDefinition",
    "ArgInstruction",
    "BindMount",
    "BuildDefinition",
    "CacheMount",
    "CmdInstruction",
    "CopyInstruction",
    "Dependency",
    "Device",
    "Dockerfile",
    "EntrypointInstruction",
    "EnvInstruction",
    "ExposeInstruction",
    "FromInstruction",
    "GlobalArgs",
    "HealthcheckInstruction",
    "Heredoc",
    "ImageEnv",
    "Instruction",
    "InstructionError",
    "KeyValue",
    "LabelInstruction",
    "Location",
    "MaintainerInstruction",
    "MetaArg",
    "Mount",
    "MountError",
    "Node",
    "OnbuildInstruction",
    "Outline",
    "ParseWarning",
    "PatternMatcher",
    "RunInstruction",
    "SecretMount",
    "ShellError",
    "ShellInstruction",
    "ShellLex",
    "SourceContent",
    "SshMount",
    "Stage",
    "StopsignalInstruction",
    "Target",
    "TmpfsMount",
    "UnknownTargetError",
    "UserInstruction",
    "VolumeInstruction",
    "WorkdirInstruction",
    "build_outline",
    "expand",
    "expand_words",
    "find_ignore_file",
    "list_targets",
    "mount_from",
    "parse",
    "parse_instruction",
    "parse_mount",
    "parse_stages",
    "parse_trigger",
    "predefined_args",
    "read_ignore_patterns",
    "render_call",
]


def __getattr__(name: str) -> Any:
    """Import the module that owns `name` on first use, and keep the value here."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
