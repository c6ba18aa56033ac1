"""`strata build`: for now its `--call=targets|outline` side, as `docker buildx build --call`.

The command only gathers options; `call_result` does the work so the build engine can
add its own flags (-t, -o, --progress, ...) to the same command later and branch on
`--call=build`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click

from strata.cli.report import print_error
from strata.dockerfile.outline import CALLS, render_call
from strata.dockerfile.stages import UnknownTargetError, parse_stages
from strata.errors import DockerfileError, StrataError, UsageError


@dataclass(frozen=True)
class CallRequest:
    """A parsed `--call` value (buildx: util/buildflags/callfunc.go, ParseCallFunc)."""

    name: str
    json_format: bool = False


def parse_call(value: str, *, output_format: str | None = None) -> CallRequest | None:
    """`outline`, `targets,format=json`, ...; None for `build` (a normal build)."""
    if value == "":
        return None
    name = ""
    json_format = False
    for field in value.split(","):
        key, has_value, setting = field.partition("=")
        if has_value:
            if key == "format":
                json_format = setting == "json"
            elif key != "ignorestatus":
                raise UsageError(f"invalid print field: {field}", option="--call")
        elif name:
            raise UsageError(f"invalid print value: {value}", option="--call")
        else:
            name = field
    if output_format is not None:
        json_format = output_format == "json"
    if name == "build":
        return None
    if name not in CALLS:
        raise UsageError(
            f'unsupported call "{name}" (supported: {", ".join(CALLS)})', option="--call"
        )
    return CallRequest(name=name, json_format=json_format)


def parse_build_args(values: Sequence[str]) -> dict[str, str]:
    """`K=V` pairs; a bare `K` takes `$K` from the environment when set (as buildx)."""
    args: dict[str, str] = {}
    for value in values:
        key, has_value, setting = value.partition("=")
        if has_value:
            args[key] = setting
        elif key in os.environ:
            args[key] = os.environ[key]
    return args


def read_dockerfile(context: Path, dockerfile: str | None) -> tuple[str, str]:
    """The Dockerfile's text and the name errors show for it.

    `-` reads standard input. Without `-f`, `<context>/Dockerfile` is used, falling back
    to a lower-case `dockerfile` as BuildKit's dockerui does.
    """
    if dockerfile == "-":
        return sys.stdin.read(), "Dockerfile"
    if dockerfile is not None:
        path = Path(dockerfile)
    else:
        path = context / "Dockerfile"
        if not path.exists() and (context / "dockerfile").exists():
            path = context / "dockerfile"
    try:
        return path.read_text(encoding="utf-8"), path.name
    except FileNotFoundError:
        raise DockerfileError(
            f"failed to read dockerfile: open {path.name}: no such file or directory",
            file=path.name,
        ) from None
    except OSError as exc:
        raise DockerfileError(
            f"failed to read dockerfile: {exc.strerror}", file=path.name
        ) from None


def call_result(
    request: CallRequest,
    context: Path,
    *,
    dockerfile: str | None = None,
    target: str | None = None,
    build_args: dict[str, str] | None = None,
) -> str:
    """Everything `--call` does, as text to print: read, parse, evaluate, render."""
    from strata.dockerfile.parser import parse

    if not context.is_dir():
        raise UsageError(f'unable to prepare context: path "{context}" not found')
    text, filename = read_dockerfile(context, dockerfile)
    definition = parse_stages(parse(text, filename=filename))
    return render_call(
        request.name,
        definition,
        target=target,
        build_args=build_args,
        json_format=request.json_format,
    )


@click.command(name="build")
@click.argument("context", type=click.Path(path_type=Path))
@click.option(
    "-f",
    "--file",
    "dockerfile",
    default=None,
    help="Name of the Dockerfile (default: CONTEXT/Dockerfile; - reads standard input).",
)
@click.option("--target", default=None, help="Set the target build stage.")
@click.option("--build-arg", "build_args", multiple=True, help="Set a build-time variable K=V.")
@click.option(
    "--call",
    "call",
    default="build",
    show_default=True,
    help='Set method for evaluating build ("outline", "targets"; append ",format=json").',
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Output format of --call (same as ,format=json).",
)
def build(
    context: Path,
    dockerfile: str | None,
    target: str | None,
    build_args: tuple[str, ...],
    call: str,
    output_format: str | None,
) -> None:
    """Build an image from a Dockerfile (for now: --call=targets|outline)."""
    try:
        request = parse_call(call, output_format=output_format)
        if request is None:
            raise UsageError(
                "building images is not available yet; use --call=targets or --call=outline",
                option="--call",
            )
        output = call_result(
            request,
            context,
            dockerfile=dockerfile,
            target=target,
            build_args=parse_build_args(build_args),
        )
    except UnknownTargetError as exc:
        print_error(exc)
        if exc.stages:
            click.echo(f"available targets: {', '.join(exc.stages)}", err=True)
        # SystemExit, not ctx.exit: under standalone_mode=False click returns the code
        # of ctx.exit instead of exiting, and the entry point would then exit 0.
        raise SystemExit(exc.exit_code) from None
    except StrataError as exc:
        print_error(exc)
        raise SystemExit(exc.exit_code) from None
    click.echo(output, nl=False)


COMMANDS: list[click.Command] = [build]
