"""`strata build`: the flags of `docker buildx build` that apply to a local builder.

The command only gathers and checks options and prints; the build itself is
`strata.api.build`, and `--call=targets|outline` is `call_result`. Progress goes to
stderr through the printer `--progress` picks; after it, the failure report (if any)
and the exit code come from `strata.progress.report`. `-q` prints the image ID on
stdout, as `docker build -q` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from strata.api import (
    BuildRequest,
    BuildResult,
    Client,
    DebugSession,
    DebugShell,
    NetworkMode,
    OnError,
    Runtime,
    SSHSource,
    decode_dockerfile_text,
    go_quote,
    metadata_of,
    parse_cache_specs,
    parse_outputs,
    parse_size,
)
from strata.api import read_dockerfile as read_dockerfile_file
from strata.cli.buildx_flags import (
    BuildxCommand,
    buildx_options,
    read_allow,
    read_buildx_flags,
)
from strata.cli.buildx_flags import print_warnings as print_buildx_warnings
from strata.cli.context import client
from strata.cli.preflight import check_context, check_destinations
from strata.cli.report import print_error
from strata.dockerfile.outline import CALLS, ImageEnv, render_call
from strata.dockerfile.stages import parse_stages
from strata.errors import Interrupted, StrataError, UnknownTargetError, UsageError
from strata.progress.bus import ProgressBus
from strata.progress.printers import make_printer
from strata.progress.protocol import Printer
from strata.progress.report import report_build_end


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
    if name in ("check", "lint"):
        return CallRequest(name="check", json_format=json_format)
    if name not in CALLS:
        raise UsageError(
            f'unsupported call "{name}" (supported: {", ".join(("check", *CALLS))})',
            option="--call",
        )
    return CallRequest(name=name, json_format=json_format)


def list_to_map(values: Sequence[str], *, option: str, from_env: bool) -> dict[str, str]:
    """`K=V` pairs as buildx's listToMap reads them (commands/build.go): an empty key is
    refused; a bare `K` takes `$K` when `from_env` and it is set, else the empty value."""
    pairs: dict[str, str] = {}
    for value in values:
        key, has_value, setting = value.partition("=")
        if not key:
            raise UsageError(f"invalid key-value pair {go_quote(value)}: empty key", option=option)
        if has_value:
            pairs[key] = setting
        elif not from_env:
            pairs[key] = ""
        elif key in os.environ:
            pairs[key] = os.environ[key]
    return pairs


def parse_build_args(values: Sequence[str]) -> dict[str, str]:
    """`--build-arg K=V`; a bare `K` takes `$K` from the environment when set."""
    return list_to_map(values, option="--build-arg", from_env=True)


def read_dockerfile(context: Path, dockerfile: str | None) -> tuple[str, str]:
    """The Dockerfile's text and the name errors show for it; `-` reads standard input,
    anything else is `strata.api.read_dockerfile`."""
    if dockerfile == "-":
        return decode_dockerfile_text(sys.stdin.buffer.read(), "Dockerfile"), "Dockerfile"
    text, path = read_dockerfile_file(context, Path(dockerfile) if dockerfile else None)
    return text, path.name


def call_result(
    request: CallRequest,
    context: Path,
    *,
    dockerfile: str | None = None,
    target: str | None = None,
    build_args: dict[str, str] | None = None,
    image_env: ImageEnv | None = None,
) -> str:
    """Everything `--call` does, as text to print: read, parse, evaluate, render.

    `image_env` tells the outline a base image's ENV (BuildKit resolves the image for it).
    """
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
        image_env=image_env,
    )


def parse_secret(value: str) -> tuple[str, bytes]:
    """`id=ID,src=PATH` / `id=ID,env=VAR` (buildx `util/buildflags/secrets.go`)."""
    fields: dict[str, str] = {}
    for item in value.split(","):
        key, has_value, setting = item.partition("=")
        key = key.strip().lower()
        if not has_value:
            raise UsageError(f"invalid field '{item}' must be a key=value pair", option="--secret")
        if key == "source":
            key = "src"
        if key not in ("id", "src", "env", "type"):
            raise UsageError(f"unexpected key '{key}' in '{item}'", option="--secret")
        fields[key] = setting
    secret_id = fields.get("id") or fields.get("env") or ""
    if not secret_id and "src" in fields:
        secret_id = Path(fields["src"]).name
    if not secret_id:
        raise UsageError(f"secret id is required in {value!r}", option="--secret")
    kind = fields.get("type", "env" if "env" in fields else "file")
    if kind == "env" or ("src" not in fields and secret_id in os.environ):
        name = fields.get("env") or fields.get("src") or secret_id
        if name not in os.environ:
            raise UsageError(f"secret {secret_id}: environment variable {name} is not set")
        return secret_id, os.environ[name].encode()
    source = fields.get("src") or secret_id
    try:
        return secret_id, Path(source).read_bytes()
    except OSError as exc:
        raise UsageError(
            f"failed to read secret {secret_id} from {source}: {exc.strerror}", option="--secret"
        ) from None


def parse_ssh(value: str) -> tuple[str, SSHSource]:
    """`default`, `ID=SOCKET` or `ID=KEY[,KEY]` (buildx `util/buildflags/ssh.go`)."""
    ssh_id, has_paths, paths = value.partition("=")
    if not has_paths or not paths:
        socket = os.environ.get("SSH_AUTH_SOCK")
        if not socket:
            raise UsageError(
                f"invalid empty ssh agent socket for {ssh_id}: make sure SSH_AUTH_SOCK is set",
                option="--ssh",
            )
        return ssh_id or "default", SSHSource(agent_socket=Path(socket))
    files = [Path(p) for p in paths.split(",") if p]
    if len(files) == 1 and files[0].is_socket():
        return ssh_id, SSHSource(agent_socket=files[0])
    for path in files:
        if not path.is_file():
            raise UsageError(f"ssh key {path} not found", option="--ssh")
    return ssh_id, SSHSource(key_files=tuple(files))


def quiet_mode(quiet: bool, progress: str) -> bool:
    """Whether only the image ID is printed: `-q`, or `--progress=quiet`, which buildx
    treats alike. `-q` with another explicit mode is refused, as buildx does
    (commands/build.go, toDisplayMode): only `auto` and `quiet` go with it."""
    if quiet and progress not in ("auto", "quiet"):
        raise UsageError(f"progress={progress} and quiet cannot be used together")
    return quiet or progress == "quiet"


def check_gc_budget(value: str) -> str:
    """`--gc-budget` as given, once known to be a size or `off` (checked before building,
    so a typo is a usage error and not a failed build)."""
    if value.strip().lower() not in ("", "off", "none", "false"):
        try:
            parse_size(value.strip())
        except ValueError as exc:
            raise UsageError(f"invalid GC budget {value!r}: {exc}", option="--gc-budget") from None
    return value


def parse_labels(values: Sequence[str]) -> dict[str, str]:
    """`--label K=V`; a bare `K` is an empty label."""
    return list_to_map(values, option="--label", from_env=False)


def _split_commas(values: Sequence[str]) -> list[str]:
    return [item for value in values for item in value.split(",") if item]


@click.command(name="build", cls=BuildxCommand)
@click.argument("context", type=str)
@click.option(
    "-f",
    "--file",
    "dockerfile",
    default=None,
    help="Name of the Dockerfile (default: CONTEXT/Dockerfile; - reads standard input).",
)
@click.option("-t", "--tag", "tags", multiple=True, help="Name and optionally a tag (name:tag).")
@click.option("--target", default=None, help="Set the target build stage.")
@click.option("--build-arg", "build_args", multiple=True, help="Set a build-time variable K=V.")
@click.option("--secret", "secrets", multiple=True, help="Secret: id=ID,src=PATH or id=ID,env=VAR.")
@click.option("--ssh", "ssh", multiple=True, help="SSH agent or keys: default or ID=PATH[,PATH].")
@click.option("--no-cache", is_flag=True, help="Do not use cache when building the image.")
@click.option(
    "--no-cache-filter", "no_cache_filter", multiple=True, help="Do not cache these stages."
)
@click.option("--network", default="default", help="Networking mode for RUN (default, none, host).")
@click.option(
    "--allow", "allow", multiple=True, help="Extra entitlement: network.host, security.insecure."
)
@click.option("--label", "labels", multiple=True, help="Set metadata for the image K=V.")
@click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    help="Output: type=local|tar|docker|oci|image|registry[,dest=PATH][,name=N][,push=true]"
    "[,compression=gzip|zstd|uncompressed][,oci-mediatypes=BOOL][,tar=false]...; DIR; "
    "- (tar to stdout).",
)
@click.option("--push", "push", is_flag=True, help="Shorthand for --output=type=registry.")
@click.option(
    "--load",
    "load",
    is_flag=True,
    help="Also store the image in the image store when -o is given (the default without -o).",
)
@click.option(
    "--iidfile", type=click.Path(path_type=Path), default=None, help="Write the image ID."
)
@click.option(
    "--metadata-file",
    "metadata_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Write build result metadata (JSON).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the image ID on success.")
@click.option(
    "--progress",
    default="auto",
    show_default=True,
    help="Progress output: auto, plain, tty, rawjson, quiet.",
)
@click.option("--platform", default=None, help="Target platform (only this machine's).")
@click.option(
    "--on-error",
    "on_error",
    type=click.Choice(["error", "shell"]),
    default="error",
    show_default=True,
    help="When a RUN fails: fail (error), or first open a shell in its container (shell; "
    "needs a terminal).",
)
@click.option(
    "--gc-budget",
    "gc_budget",
    default=None,
    metavar="SIZE|off",
    help="Build cache kept after the build (GC, least recently used first); "
    "default $STRATA_GC_BUDGET or 10% of the disk, at most 10GB.",
)
@click.option(
    "--oci-runtime",
    "runtime",
    type=click.Choice(["runc", "crun"]),
    default=None,
    help="OCI runtime for RUN steps (default: runc, or crun when runc is not installed).",
)
@click.option("--pull", is_flag=True, help="Always ask the registry for base images.")
# -- remote cache (strata.remotecache) --
@click.option(
    "--cache-from",
    "cache_from",
    multiple=True,
    help="Cache to import: NAME or type=registry|local[,KEY=VALUE] (e.g. type=local,src=DIR).",
)
@click.option(
    "--cache-to",
    "cache_to",
    multiple=True,
    help="Cache to export: NAME or type=registry|local|inline[,KEY=VALUE] (mode=min|max).",
)
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
@buildx_options
@click.pass_context
def build(
    ctx: click.Context,
    /,
    context: str,
    dockerfile: str | None,
    tags: tuple[str, ...],
    target: str | None,
    build_args: tuple[str, ...],
    secrets: tuple[str, ...],
    ssh: tuple[str, ...],
    no_cache: bool,
    no_cache_filter: tuple[str, ...],
    network: NetworkMode,
    allow: tuple[str, ...],
    labels: tuple[str, ...],
    outputs: tuple[str, ...],
    push: bool,
    load: bool,
    iidfile: Path | None,
    metadata_file: Path | None,
    quiet: bool,
    progress: str,
    platform: str | None,
    gc_budget: str | None,
    on_error: OnError,
    runtime: Runtime | None,
    pull: bool,
    cache_from: tuple[str, ...],
    cache_to: tuple[str, ...],
    call: str,
    output_format: str | None,
    **buildx: Any,
) -> None:
    """Build an image from a Dockerfile and a context (a directory, or - for stdin)."""
    try:
        # The rest of buildx's flags (strata.cli.buildx_flags): checked first, so a
        # refused one fails before any work.
        flags = read_buildx_flags(buildx)
        print_buildx_warnings(flags)
        allow = tuple(read_allow(allow))
        if context != "-":
            check_context(context)
        call_request = parse_call(
            "check" if flags.check else flags.call or call, output_format=output_format
        )
        if call_request is not None and call_request.name != "check":
            if context == "-":
                raise UsageError("--call needs a context directory", option="--call")
            outline = call_request.name == "outline"
            with client(ctx).image_env() if outline else contextlib.nullcontext() as image_env:
                output = call_result(
                    call_request,
                    Path(context),
                    dockerfile=dockerfile,
                    target=target,
                    build_args=parse_build_args(build_args),
                    image_env=image_env,
                )
            click.echo(output, nl=False)
            return
        quiet = quiet_mode(quiet, progress)
        request = _build_request(
            context=context,
            dockerfile=dockerfile,
            tags=tags,
            target=target,
            build_args=build_args,
            secrets=secrets,
            ssh=ssh,
            no_cache=no_cache,
            no_cache_filter=no_cache_filter,
            network=network,
            allow=allow,
            labels=labels,
            outputs=outputs,
            platform=platform,
            pull=pull,
            push=push,
            load=load,
        )
        request = dataclasses.replace(request, sandbox=flags.sandbox, annotations=flags.annotations)
        if call_request is None:
            check_destinations(
                request.outputs, iidfile=iidfile, metadata_file=metadata_file, stdout=sys.stdout
            )
        if call_request is not None:  # check
            if context == "-":
                raise UsageError("--call needs a context directory", option="--call")
            raise SystemExit(_run_check(client(ctx), request, call_request))
        if gc_budget is not None:
            request = dataclasses.replace(request, gc_budget=check_gc_budget(gc_budget))
        # The global `strata --snapshotter` ($STRATA_SNAPSHOTTER); `build` has no flag
        # of its own for it.
        request = dataclasses.replace(
            request,
            on_error=on_error,
            runtime=runtime,
            snapshotter=ctx.obj.get("snapshotter", "auto"),
            cache_from=parse_cache_specs(cache_from, "from"),
            cache_to=parse_cache_specs(cache_to, "to"),
        )
        printer = make_printer("quiet" if quiet else progress, sys.stderr)
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
    code = _run_build(
        client(ctx), request, printer, iidfile, metadata_file, quiet, debug=flags.debug
    )
    if code != 0:
        raise SystemExit(code)


def _build_request(
    *,
    context: str,
    dockerfile: str | None,
    tags: Sequence[str],
    target: str | None,
    build_args: Sequence[str],
    secrets: Sequence[str],
    ssh: Sequence[str],
    no_cache: bool,
    no_cache_filter: Sequence[str],
    network: NetworkMode,
    allow: Sequence[str],
    labels: Sequence[str],
    outputs: Sequence[str],
    platform: str | None,
    pull: bool,
    push: bool = False,
    load: bool = False,
) -> BuildRequest:
    """Check the options and turn them into an API request."""
    if context == "-" and dockerfile == "-":
        raise UsageError("invalid argument: can't use stdin for both build context and dockerfile")
    dockerfile_text: str | None = None
    dockerfile_path: Path | None = None
    if dockerfile == "-":
        dockerfile_text = decode_dockerfile_text(sys.stdin.buffer.read(), "Dockerfile")
    elif dockerfile is not None:
        dockerfile_path = Path(dockerfile)
    return BuildRequest(
        context=None if context == "-" else Path(context),
        context_stream=sys.stdin.buffer if context == "-" else None,
        dockerfile=dockerfile_path,
        dockerfile_text=dockerfile_text,
        target=target,
        build_args=parse_build_args(build_args),
        secrets=dict(parse_secret(s) for s in secrets),
        ssh=dict(parse_ssh(s) for s in ssh),
        no_cache=no_cache,
        no_cache_filter=_split_commas(no_cache_filter),
        network=network,
        allow=_split_commas(allow),
        labels=parse_labels(labels),
        tags=tuple(tags),
        outputs=parse_outputs(list(outputs), push=push, load=load),
        platform=platform,
        pull=pull,
    )


def _run_build(
    builder: Client,
    request: BuildRequest,
    printer: Printer,
    iidfile: Path | None,
    metadata_file: Path | None,
    quiet: bool,
    *,
    debug: bool = False,
) -> int:
    bus = ProgressBus(printer)
    error: StrataError | None = None
    result = None
    try:
        result = builder.build(
            request,
            progress=bus,
            stdout=sys.stdout.buffer,
            debug_shell=debug_shell_on_terminal(bus),
        )
    except StrataError as exc:
        error = exc
    except KeyboardInterrupt:
        error = Interrupted(signal_number=2)
    finally:
        summary = bus.close()
    code = report_build_end(sys.stderr, summary, error, debug=debug)
    if result is not None and error is None:
        try:
            if iidfile is not None and result.image_id:
                write_iidfile(iidfile, result)
            if metadata_file is not None:
                write_metadata_file(metadata_file, result)
        except OSError as exc:
            # Checked before the build; this is what changed since.
            print_error(UsageError(f"cannot write {exc.filename}: {exc.strerror}"))
            return 1
        if quiet and result.image_id:
            click.echo(result.image_id)
    return code


def _run_check(builder: Client, request: BuildRequest, call: CallRequest) -> int:
    """`--call=check`: the findings on stdout as buildx prints them; exit 1 when any."""
    from strata.api import check_json, render_check

    result = builder.lint(request)
    if call.json_format:
        click.echo(json.dumps(check_json(result), indent=2))
    else:
        click.echo(render_check(result), nl=False)
    if result.error is not None:
        click.echo(f"ERROR: {result.error}", err=True)
    return result.exit_code


def write_iidfile(path: Path, result: BuildResult) -> None:
    """`--iidfile`: the image ID alone, no newline (as buildx writes it)."""
    path.write_text(result.image_id)


def write_metadata_file(path: Path, result: BuildResult) -> None:
    """`--metadata-file`: `strata.api.metadata_of` as indented JSON."""
    path.write_text(json.dumps(metadata_of(result), indent=2, sort_keys=True) + "\n")


def debug_shell_on_terminal(bus: ProgressBus) -> DebugShell:
    """`--on-error=shell`: end the progress display, then run the failed step's shell
    on this process's terminal. Without a terminal on stdin, only say why not."""

    def open_debug_shell(session: DebugSession) -> None:
        bus.close()
        if not sys.stdin.isatty():
            click.echo(
                "WARNING: --on-error=shell needs a terminal on stdin: not starting a debug shell",
                err=True,
            )
            return
        click.echo(
            f"Starting debug shell ({session.shell}) in {session.step_name}; exit to end the build",
            err=True,
        )
        session.open_shell(sys.stdin.fileno())

    return open_debug_shell


COMMANDS: list[click.Command] = [build]
