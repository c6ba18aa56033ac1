"""`RUN --mount=<csv>` values turned into typed mounts, with BuildKit's defaults and errors.

BuildKit reads a mount twice (buildkit: frontend/dockerfile/instructions/
commands_runmount.go): at instruction parse it only checks the CSV and that `from`
holds no variable (`mount_from`); at dispatch it expands every value with the build
environment and validates all options (`parse_mount`). Checks see the type *as parsed
so far*, so `size=1m,type=tmpfs` fails: the type is still `bind` when `size` is read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from strata.dockerfile.suggest import with_suggestion
from strata.errors import MountError
from strata.gotext import go_lower, go_path_base, go_path_clean, go_quote
from strata.gotext import parse_ram_in_bytes as parse_ram_size
from strata.modes import SHARING_MODES

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")

# Every key BuildKit knows, in its own order (used for `did you mean` hints).
MOUNT_KEYS = (
    "type",
    "from",
    "source",
    "target",
    "readonly",
    "id",
    "sharing",
    "required",
    "size",
    "mode",
    "uid",
    "gid",
    "src",
    "dst",
    "destination",
    "ro",
    "rw",
    "readwrite",
    "env",
)

_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class BindMount:
    """Files of the context, a stage or an image at `target`; writes are discarded."""

    target: str = ""  # "" = the WORKDIR
    source: str = ""  # path inside `from`; "" = its root
    from_: str = ""  # stage name or image; "" = the build context
    read_only: bool = True


@dataclass(frozen=True)
class CacheMount:
    """A directory that persists across builds, never part of a layer."""

    target: str = ""
    source: str = ""
    from_: str = ""  # seed of a new cache; "" = an empty directory
    read_only: bool = False
    id: str = ""  # "" = the cleaned target as written
    sharing: str = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None

    @property
    def cache_id(self) -> str:
        """The storage ID before namespacing: `id`, else the target cleaned as written."""
        return self.id or go_path_clean(self.target)


@dataclass(frozen=True)
class TmpfsMount:
    """An empty in-memory filesystem for the duration of the step."""

    target: str = ""
    read_only: bool = False
    size: int | None = None  # bytes; None = the kernel default


@dataclass(frozen=True)
class SecretMount:
    """A client secret as a file and/or an environment variable, never stored."""

    id: str  # resolved: `source`, else `id`, else basename of the target
    target: str = ""
    env: str | None = None
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None

    @property
    def file_target(self) -> str | None:
        """Where the file goes: the target, or `/run/secrets/<id>` unless it is env-only."""
        if self.target:
            return self.target
        if self.env is not None:
            return None
        return "/run/secrets/" + go_path_base(self.id)


@dataclass(frozen=True)
class SshMount:
    """The client's SSH agent socket; target "" = `/run/buildkit/ssh_agent.<k>`."""

    id: str = "default"
    target: str = ""
    required: bool = False
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


Mount = BindMount | CacheMount | TmpfsMount | SecretMount | SshMount


def split_csv(value: str) -> list[str]:
    """One CSV record as go-csvvalue reads it: `"` quoting, `""` for a quote inside quotes.

    Errors use encoding/csv's wording and 1-based byte column.
    """
    line = value
    if line.endswith("\r\n"):
        line = line[:-2]
    elif line.endswith("\n"):
        line = line[:-1]
    if line == "":
        raise ValueError("EOF")

    def column(index: int) -> int:
        return len(line[:index].encode()) + 1

    fields: list[str] = []
    pos = 0
    while True:
        if pos >= len(line) or line[pos] != '"':
            comma = line.find(",", pos)
            end = len(line) if comma < 0 else comma
            text = line[pos:end]
            quote = text.find('"')
            if quote >= 0:
                raise ValueError(
                    f'parse error on line 1, column {column(pos + quote)}: bare " in non-quoted-field'
                )
            fields.append(text)
            if comma < 0:
                return fields
            pos = comma + 1
            continue
        pos += 1
        text_parts: list[str] = []
        while True:
            quote = line.find('"', pos)
            if quote < 0:
                raise ValueError(
                    f'parse error on line 1, column {column(pos)}: extraneous or missing " in quoted-field'
                )
            text_parts.append(line[pos:quote])
            pos = quote + 1
            following = line[pos] if pos < len(line) else ""
            if following == '"':
                text_parts.append('"')
                pos += 1
                continue
            if following == ",":
                fields.append("".join(text_parts))
                pos += 1
                break
            if following == "":
                fields.append("".join(text_parts))
                return fields
            raise ValueError(
                f'parse error on line 1, column {column(pos - 1)}: extraneous or missing " in quoted-field'
            )


def _fields(value: str) -> list[str]:
    try:
        return split_csv(value)
    except ValueError as exc:
        raise MountError(f"failed to parse csv mounts: {exc}") from None


def mount_from(value: str) -> str:
    """The parse-time check of one `--mount` value; returns its `from` as written.

    Only the CSV syntax and `from` are looked at here, as BuildKit does before the
    build environment exists. A `$` anywhere in `from` but last fails, since the stage
    graph is fixed before variables are known.
    """
    source = ""
    for field in _fields(value):
        key, has_value, raw = field.partition("=")
        if has_value and go_lower(key) == "from":
            dollar = raw.find("$")
            if dollar != -1 and dollar != len(raw) - 1:
                raise MountError(
                    "'from' doesn't support variable expansion, define alias stage instead"
                )
            source = raw
    return source


def _parse_bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise MountError(f"invalid value for {key}: {value}")


def _parse_uint(key: str, value: str, base: int) -> int:
    digits = "01234567" if base == 8 else "0123456789"
    if value == "" or any(c not in digits for c in value) or int(value, base) >= 1 << 32:
        raise MountError(f"invalid value {value} for {key}")
    return int(value, base)


@dataclass
class _Options:
    type: str = "bind"
    from_: str = ""
    source: str = ""
    target: str = ""
    read_only: bool = False
    read_only_set: bool = False
    size: int | None = None
    id: str = ""
    sharing: str = ""
    required: bool = False
    env: str | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


def _apply(opts: _Options, key: str, field: str, value: str) -> None:
    if key == "type":
        kind = go_lower(value)
        if kind not in MOUNT_TYPES:
            raise MountError(
                with_suggestion(f"unsupported mount type {go_quote(value)}", value, MOUNT_TYPES)
            )
        opts.type = kind
    elif key == "from":
        opts.from_ = value
    elif key in ("source", "src"):
        opts.source = value
    elif key in ("target", "dst", "destination"):
        opts.target = value
    elif key in ("readonly", "ro"):
        opts.read_only, opts.read_only_set = _parse_bool(key, value), True
    elif key in ("readwrite", "rw"):
        opts.read_only, opts.read_only_set = not _parse_bool(key, value), True
    elif key == "required":
        if opts.type not in ("secret", "ssh"):
            raise MountError(f"unexpected key 'required' for mount type '{opts.type}'")
        opts.required = _parse_bool(key, value)
    elif key == "size":
        if opts.type != "tmpfs":
            raise MountError(f"unexpected key 'size' for mount type '{opts.type}'")
        try:
            opts.size = parse_ram_size(value)
        except ValueError:
            raise MountError(f"invalid value for size: {value}") from None
    elif key == "id":
        opts.id = value
    elif key == "sharing":
        sharing = go_lower(value)
        if sharing not in SHARING_MODES:
            raise MountError(
                with_suggestion(
                    f"unsupported sharing value {go_quote(value)}", value, SHARING_MODES
                )
            )
        opts.sharing = sharing
    elif key == "mode":
        opts.mode = _parse_uint("mode", value, 8)
    elif key == "uid":
        opts.uid = _parse_uint("uid", value, 10)
    elif key == "gid":
        opts.gid = _parse_uint("gid", value, 10)
    elif key == "env":
        opts.env = value
    else:
        raise MountError(with_suggestion(f"unexpected key '{key}' in '{field}'", key, MOUNT_KEYS))


def parse_mount(value: str, *, expand: Callable[[str], str]) -> Mount:
    """Parse one `--mount` value at dispatch, expanding values with `expand`.

    `from` is taken as written: the stage graph was built from the raw value, and
    `mount_from` already refused variables in it. Raises MountError with BuildKit's text
    (errors of `expand` itself pass through).
    """
    opts = _Options()
    for field in _fields(value):
        key, has_value, raw = field.partition("=")
        key = go_lower(key)
        if not has_value:
            if key in ("readonly", "ro"):
                opts.read_only, opts.read_only_set = True, True
            elif key in ("readwrite", "rw"):
                opts.read_only, opts.read_only_set = False, True
            elif key == "required":
                if opts.type not in ("secret", "ssh"):
                    raise MountError(f"unexpected key 'required' for mount type '{opts.type}'")
                opts.required = True
            else:
                raise MountError(f"invalid field '{field}' must be a key=value pair")
            continue
        _apply(opts, key, field, raw if key == "from" else expand(raw))
    return _typed(opts)


def _typed(opts: _Options) -> Mount:
    if opts.type not in ("secret", "ssh", "cache"):
        for name in ("mode", "uid", "gid"):
            if getattr(opts, name) is not None:
                raise MountError(f"{name} not allowed for {go_quote(opts.type)} type mounts")
    read_only = opts.read_only if opts.read_only_set else opts.type not in ("cache", "tmpfs")
    if opts.type == "secret":
        if opts.from_:
            raise MountError("secret mount should not have a from")
        if opts.sharing:
            raise MountError("secret mount should not define sharing")
        if not opts.source and not opts.target and not opts.id:
            raise MountError("invalid secret mount. one of source, target required")
        if opts.source and opts.id:
            raise MountError("both source and id can't be set")
    if opts.sharing and opts.type != "cache":
        raise MountError(f"invalid cache sharing set for {opts.type} mount")
    if opts.type == "bind":
        return BindMount(
            target=opts.target, source=opts.source, from_=opts.from_, read_only=read_only
        )
    if opts.type == "cache":
        return CacheMount(
            target=opts.target,
            source=opts.source,
            from_=opts.from_,
            read_only=read_only,
            id=opts.id,
            sharing=opts.sharing or "shared",
            mode=opts.mode,
            uid=opts.uid,
            gid=opts.gid,
        )
    if opts.type == "tmpfs":
        return TmpfsMount(target=opts.target, read_only=read_only, size=opts.size)
    if opts.type == "secret":
        # buildkit: dockerfile2llb/convert_secrets.go picks source, then id, then target.
        secret_id = opts.source or opts.id or go_path_base(opts.target)
        return SecretMount(
            id=secret_id,
            target=opts.target,
            env=opts.env,
            required=opts.required,
            mode=opts.mode,
            uid=opts.uid,
            gid=opts.gid,
        )
    # buildkit: dockerfile2llb/convert_ssh.go rejects source when the mount is used.
    if opts.source:
        raise MountError("ssh does not support source")
    return SshMount(
        id=opts.id or "default",
        target=opts.target,
        required=opts.required,
        mode=opts.mode,
        uid=opts.uid,
        gid=opts.gid,
    )
