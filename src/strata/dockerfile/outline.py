"""`--call=targets` and `--call=outline`: what a Dockerfile offers, without building it.

Targets lists every stage (buildkit: dockerfile2llb/convert.go ListTargets); the
outline walks the stages the target needs as a dispatch would, collecting the build
ARGs that matter, the secrets and the SSH sockets (dockerfile2llb/outline.go). Both
render as BuildKit's subrequest printers do (frontend/subrequests/{targets,outline}),
and as JSON with the same field names.

The outline pulls no image: a caller that can resolve base images passes `image_env` so
their environment variables expand as in BuildKit; without it an ARG default or mount
option that refers to one expands as if it were unset.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strata.dockerfile.instructions import (
    ArgDefinition,
    ArgInstruction,
    EnvInstruction,
    Instruction,
    Location,
    RunInstruction,
)
from strata.dockerfile.mounts import SecretMount, SshMount
from strata.dockerfile.shell import ShellLex
from strata.dockerfile.stages import (
    EMPTY_IMAGE,
    BuildDefinition,
    GlobalArgs,
    Stage,
    predefined_args,
)
from strata.dockerfile.suggest import with_suggestion
from strata.errors import ShellError, located

# BuildKit's system.DefaultPathEnv for Linux: the PATH of scratch and of images without one.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ImageEnv = Callable[[str, str | None], Mapping[str, str]]
"""Looks up a base image's environment: (image name as FROM expands it, --platform as
expanded or None) -> its config's Env as a mapping. The caller resolves the image."""


@dataclass(frozen=True)
class Target:
    """One stage as `--call=targets` lists it."""

    name: str
    default: bool
    description: str
    base: str
    platform: str
    location: Location


@dataclass(frozen=True)
class OutlineArg:
    name: str
    value: str
    description: str
    location: Location
    order: int = 0  # position within its ARG line, to keep a stable order


@dataclass(frozen=True)
class OutlineSecret:
    name: str
    required: bool
    location: Location


@dataclass(frozen=True)
class Outline:
    """The parameters the target accepts, BuildKit's outline.Outline."""

    name: str
    description: str
    args: tuple[OutlineArg, ...]
    secrets: tuple[OutlineSecret, ...]
    ssh: tuple[OutlineSecret, ...]


def list_targets(definition: BuildDefinition) -> list[Target]:
    """Every stage in file order; the last one is the default target."""
    last = len(definition.stages) - 1
    return [
        Target(
            name=stage.name or "",
            default=stage.index == last,
            description=stage.description,
            base=stage.base_name,
            platform=stage.platform,
            location=stage.location,
        )
        for stage in definition.stages
    ]


@dataclass
class _ArgInfo:
    definition: ArgDefinition
    value: str
    uses: frozenset[str]
    location: Location
    order: int


@dataclass
class _StageOutline:
    """What dispatching one stage revealed (BuildKit's outlineCapture of a stage)."""

    all_args: dict[str, _ArgInfo]
    used: set[str]
    secrets: dict[str, OutlineSecret] = field(default_factory=dict)
    ssh: dict[str, OutlineSecret] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    base_name: str = ""  # the FROM expanded with the global ARGs
    platform: str | None = None  # FROM --platform expanded, None when not given


def build_outline(
    definition: BuildDefinition,
    *,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    predefined: Mapping[str, str] | None = None,
    image_env: ImageEnv | None = None,
) -> Outline:
    """The outline of `target` (default: the last stage) for these build args.

    `image_env` gives a base image's environment (see `ImageEnv`); without it the
    variables of images are unknown and expand as unset. `scratch` needs no lookup.
    Raises the DockerfileErrors a build would raise up to dispatch: no stages, unknown
    target, bad FROM expansion, cycles, later-stage references, bad mount options.
    """
    build_args = dict(build_args or {})
    if not definition.stages:
        definition.resolve_target(None)  # raises "dockerfile contains no stages to build"
    target_name = target or definition.stages[-1].name or ""
    if predefined is None:
        predefined = predefined_args(target_name, overrides=build_args)
    globals_ = definition.global_args(build_args, predefined)
    meta_infos = {
        name: _ArgInfo(arg.definition, arg.value or "", arg.uses, arg.location, order)
        for order, (name, arg) in enumerate(globals_.args.items())
    }
    outlines = _from_outlines(definition, globals_, meta_infos)
    needed = definition.stages_needed(target, env=globals_.env)
    bases = definition.base_stages(globals_.env)
    for stage in needed:
        base = bases.get(stage.index)
        outline = outlines[stage.index]
        if base is not None:
            outline.env = dict(outlines[base.index].env)
        else:
            outline.env = _base_image_env(outline, image_env)
        commands = (*definition.onbuild_triggers(stage, bases), *stage.commands)
        _dispatch(definition, commands, outlines[stage.index], globals_, build_args)
    target_stage = definition.resolve_target(target)

    def related(stage: Stage) -> list[Stage]:
        out = [bases[stage.index]] if stage.index in bases else []
        return out + [dep.source for dep in definition.dependencies(stage, bases=bases)]

    walk = _walk(target_stage, related)
    args = _collect_args(walk, outlines)
    secrets = _collect_named(outlines[s.index].secrets for s in walk)
    ssh = _collect_named(outlines[s.index].ssh for s in walk)
    return Outline(
        name=target_stage.name or "",
        description=target_stage.description,
        args=tuple(sorted(args, key=lambda a: (a.location.start_line, a.order))),
        secrets=tuple(sorted(secrets, key=lambda s: s.location.start_line)),
        ssh=tuple(sorted(ssh, key=lambda s: s.location.start_line)),
    )


def _from_outlines(
    definition: BuildDefinition, globals_: GlobalArgs, meta_infos: dict[str, _ArgInfo]
) -> dict[int, _StageOutline]:
    """Each stage's outline state right after its FROM: global ARGs it used there."""
    outlines: dict[int, _StageOutline] = {}
    by_name: dict[str, Stage] = {}
    lex = ShellLex(definition.escape)
    for stage in definition.stages:
        base_name, used = definition.expand_from(stage, globals_.env)
        used_set = set(used)
        if stage.platform:
            try:
                platform = lex.process_word(stage.platform, globals_.env)
            except ShellError as exc:
                raise stage.location.error(
                    f"failed to process arguments for platform {stage.platform}: {exc.reason}"
                ) from None
            if platform.value == "":
                raise stage.location.error(
                    _suggest_variable(
                        f"empty platform value from expression {stage.platform}",
                        platform.unmatched,
                        list(globals_.env),
                    )
                )
            used_set |= platform.matched
        base = by_name.get(base_name)
        inherited = set(outlines[base.index].used) if base is not None else set()
        outlines[stage.index] = _StageOutline(
            all_args=dict(meta_infos),
            used=inherited | used_set,
            base_name=base_name,
            platform=platform.value if stage.platform else None,
        )
        if stage.name is not None:
            by_name[stage.name] = stage
    return outlines


def _suggest_variable(message: str, unset: Iterable[str], names: Sequence[str]) -> str:
    """`message` with a hint for the first unset variable that is a typo of a known one.

    BuildKit tries the unset names in map order (convert.go wrapSuggestAny); sorted
    order keeps the hint the same from run to run.
    """
    for name in sorted(unset):
        hinted = with_suggestion(message, name, names)
        if hinted != message:
            return hinted
    return message


def _base_image_env(outline: _StageOutline, image_env: ImageEnv | None) -> dict[str, str]:
    """The environment a stage starts with when its FROM names an image.

    `scratch` is BuildKit's empty image, whose only variable is the default PATH; any
    other image's comes from `image_env`. BuildKit adds the default PATH when an image
    has none (dockerfile2llb/image.go emptyImage, convert.go dispatchStages).
    """
    if outline.base_name == EMPTY_IMAGE:
        return {"PATH": DEFAULT_PATH}
    if image_env is None:
        return {}
    env = dict(image_env(outline.base_name, outline.platform))
    env.setdefault("PATH", DEFAULT_PATH)
    return env


def _dispatch(
    definition: BuildDefinition,
    commands: Sequence[Instruction],
    outline: _StageOutline,
    globals_: GlobalArgs,
    build_args: Mapping[str, str],
) -> None:
    """Replay the instructions that shape the outline: ARG, ENV and RUN mounts.

    `commands` are the stage's own, after the ONBUILD triggers it inherits from a base
    stage, which BuildKit dispatches first.
    """
    lex = ShellLex(definition.escape)
    for command in commands:

        def expand(word: str, location: Location = command.location) -> str:
            with located(location, ShellError):
                return lex.process_word(word, outline.env).value

        if isinstance(command, ArgInstruction):
            _dispatch_arg(command, outline, globals_, build_args, expand)
        elif isinstance(command, EnvInstruction):
            pairs = [(expand(p.key), expand(p.value)) for p in command.pairs]
            outline.env.update(pairs)
        elif isinstance(command, RunInstruction):
            command.check_supported()
            for mount in command.mounts(expand):
                if isinstance(mount, SecretMount):
                    outline.secrets.setdefault(
                        mount.id, OutlineSecret(mount.id, mount.required, command.location)
                    )
                elif isinstance(mount, SshMount):
                    outline.ssh.setdefault(
                        mount.id, OutlineSecret(mount.id, mount.required, command.location)
                    )


def _dispatch_arg(
    command: ArgInstruction,
    outline: _StageOutline,
    globals_: GlobalArgs,
    build_args: Mapping[str, str],
    expand: Callable[[str], str],
) -> None:
    # buildkit: dockerfile2llb/convert.go (dispatchArg)
    for order, definition in enumerate(command.args):
        name = definition.name
        value: str | None = None
        inherited = False
        if definition.default is None and name not in build_args and name in globals_.env:
            value = globals_.env[name]
            inherited = True  # reported through the global ARG, not this line
        if name in build_args:
            value = build_args[name]
        elif definition.default is not None:
            value = expand(definition.default)
        if value is not None:
            outline.env[name] = value
        if not inherited:
            outline.all_args[name] = _ArgInfo(
                definition, value or "", frozenset(), command.location, order
            )
        outline.used.add(name)


def _walk(target: Stage, related: Callable[[Stage], list[Stage]]) -> list[Stage]:
    """Target first, then bases and dependencies depth-first, each stage once."""
    seen: set[int] = set()
    order: list[Stage] = []
    pending = [target]
    while pending:
        stage = pending.pop(0)
        if stage.index in seen:
            continue
        seen.add(stage.index)
        order.append(stage)
        pending[0:0] = related(stage)
    return order


def _collect_args(walk: Sequence[Stage], outlines: Mapping[int, _StageOutline]) -> list[OutlineArg]:
    found: list[OutlineArg] = []
    visited: set[str] = set()
    for stage in walk:
        outline = outlines[stage.index]
        used = _with_uses(outline.used, outline.all_args)
        for name in sorted(used):
            info = outline.all_args.get(name)
            if info is None or name in visited:
                continue
            visited.add(name)
            found.append(
                OutlineArg(
                    name=info.definition.name,
                    value=info.value,
                    description=info.definition.description,
                    location=info.location,
                    order=info.order,
                )
            )
    return found


def _with_uses(used: Iterable[str], all_args: Mapping[str, _ArgInfo]) -> set[str]:
    """`used` plus every global ARG their defaults referred to, transitively (markAllUsed)."""
    result: set[str] = set()
    pending = list(used)
    while pending:
        name = pending.pop()
        if name in result:
            continue
        result.add(name)
        info = all_args.get(name)
        if info is not None:
            pending.extend(info.uses)
    return result


def _collect_named(groups: Iterable[Mapping[str, OutlineSecret]]) -> list[OutlineSecret]:
    found: dict[str, OutlineSecret] = {}
    for group in groups:
        for name, item in group.items():
            found.setdefault(name, item)
    return list(found.values())


CALLS = ("outline", "targets")


def render_call(
    name: str,
    definition: BuildDefinition,
    *,
    target: str | None = None,
    build_args: Mapping[str, str] | None = None,
    json_format: bool = False,
    image_env: ImageEnv | None = None,
) -> str:
    """The text `docker buildx build --call=<name>` prints for this Dockerfile.

    JSON output is the subrequest's result.json plus a newline, as buildx prints it.
    """
    if name == "targets":
        targets = list_targets(definition)
        if json_format:
            return go_json(targets_json(targets, definition.source)) + "\n"
        return format_targets(targets)
    if name == "outline":
        outline = build_outline(
            definition, target=target, build_args=build_args, image_env=image_env
        )
        if json_format:
            return go_json(outline_json(outline, definition.source)) + "\n"
        return format_outline(outline)
    raise ValueError(f"unknown call {name!r}")


# ---- rendering -------------------------------------------------------------------


def tabulate(rows: Sequence[Sequence[str]], padding: int) -> str:
    """Go's text/tabwriter with padchar ' ': every cell but the last of a row is padded
    to its column's widest cell plus `padding`; the last cell is written as is."""
    widths: list[int] = []
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            if i == len(widths):
                widths.append(0)
            widths[i] = max(widths[i], len(cell) + padding)
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("".join(cells) + (row[-1] if row else "") + "\n")
    return "".join(lines)


def format_targets(targets: Sequence[Target]) -> str:
    """The TARGET/DESCRIPTION table (subrequests/targets PrintTargets)."""
    rows = [["TARGET", "DESCRIPTION"]]
    for t in targets:
        name = t.name
        if t.default:
            name = f"{name} (default)" if name else "(default)"
        rows.append([name, t.description])
    return tabulate(rows, padding=1)


def format_outline(outline: Outline) -> str:
    """The outline tables (subrequests/outline PrintOutline), each followed by a blank line."""
    parts: list[str] = []
    if outline.name or outline.description:
        header = [["TARGET:", outline.name or "(default)"]]
        if outline.description:
            header.append(["DESCRIPTION:", outline.description])
        parts.append(tabulate(header, padding=1) + "\n")
    if outline.args:
        rows = [["BUILD ARG", "VALUE", "DESCRIPTION"]]
        rows += [[a.name, a.value, a.description] for a in outline.args]
        parts.append(tabulate(rows, padding=3) + "\n")
    for title, items in (("SECRET", outline.secrets), ("SSH", outline.ssh)):
        if items:
            rows = [[title, "REQUIRED"]]
            rows += [[s.name, "true" if s.required else ""] for s in items]
            parts.append(tabulate(rows, padding=3) + "\n")
    return "".join(parts)


def _location_json(location: Location) -> dict[str, Any]:
    # pb.Location with Go's omitempty: source index 0 and character 0 are left out.
    return {
        "ranges": [{"start": {"line": location.start_line}, "end": {"line": location.end_line}}]
    }


def _sources(source: str) -> list[str]:
    return [base64.b64encode(source.encode()).decode("ascii")]


def targets_json(targets: Sequence[Target], source: str) -> dict[str, Any]:
    """`targets.List` with Go's field names and omitempty rules."""
    items = []
    for t in targets:
        item: dict[str, Any] = {}
        if t.name:
            item["name"] = t.name
        if t.default:
            item["default"] = True
        for key, value in (("description", t.description), ("base", t.base)):
            if value:
                item[key] = value
        if t.platform:
            item["platform"] = t.platform
        item["location"] = _location_json(t.location)
        items.append(item)
    return {"targets": items, "sources": _sources(source)}


def outline_json(outline: Outline, source: str) -> dict[str, Any]:
    """`outline.Outline` with Go's field names and omitempty rules."""
    out: dict[str, Any] = {}
    if outline.name:
        out["name"] = outline.name
    if outline.description:
        out["description"] = outline.description
    if outline.args:
        args = []
        for a in outline.args:
            item: dict[str, Any] = {"name": a.name}
            if a.description:
                item["description"] = a.description
            if a.value:
                item["value"] = a.value
            item["location"] = _location_json(a.location)
            args.append(item)
        out["args"] = args
    for key, items in (("secrets", outline.secrets), ("ssh", outline.ssh)):
        if items:
            rendered = []
            for s in items:
                entry: dict[str, Any] = {"name": s.name}
                if s.required:
                    entry["required"] = True
                entry["location"] = _location_json(s.location)
                rendered.append(entry)
            out[key] = rendered
    out["sources"] = _sources(source)
    return out


def go_json(value: Any) -> str:
    """JSON as Go's json.MarshalIndent(v, "", "  ") writes it, HTML characters escaped."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    for char, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(char, escaped)
    return text
