"""The build environment a stage sees: ENV and ARG scoping, predefined and proxy args.

BuildKit keeps a stage's environment as an ordered list where a re-assigned key moves to
the end (client/llb/meta.go `EnvList`); the RUN process gets it in that order and it is
part of every RUN's cache key, so the order matters as much as the values.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from strata.plan.ops import Platform
from strata.plan.platforms import format_platform

# Build-args that reach RUN without being declared, and never its cache key (§4.2).
PROXY_ARGS = ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")

# Build-args read by the frontend itself rather than by a stage.
HOSTNAME_ARG = "BUILDKIT_SANDBOX_HOSTNAME"
CACHE_NS_ARG = "BUILDKIT_CACHE_MOUNT_NS"
SOURCE_DATE_EPOCH_ARG = "SOURCE_DATE_EPOCH"

# Declared ARGs that BuildKit records but keeps out of the RUN environment
# (dockerfile2llb/convert.go `nonEnvArgs`).
NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class EnvList(Mapping[str, str]):
    """An immutable ordered environment; `set` moves a key to the end, as llb.EnvList does."""

    items_: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> EnvList:
        env = cls()
        for key, value in pairs:
            env = env.set(key, value)
        return env

    def set(self, key: str, value: str) -> EnvList:
        kept = tuple(item for item in self.items_ if item[0] != key)
        return EnvList((*kept, (key, value)))

    def delete(self, key: str) -> EnvList:
        return EnvList(tuple(item for item in self.items_ if item[0] != key))

    def __getitem__(self, key: str) -> str:
        for name, value in self.items_:
            if name == key:
                return value
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self.items_)

    def __len__(self) -> int:
        return len(self.items_)

    def as_strings(self) -> tuple[str, ...]:
        """`KEY=value` in order: the exec op's env."""
        return tuple(f"{name}={value}" for name, value in self.items_)


def split_env(entry: str) -> tuple[str, str]:
    """`KEY=value` → (KEY, value); a missing `=` means an empty value (convert.go parseKeyValue)."""
    key, _, value = entry.partition("=")
    return key, value


def replace_env_entry(env: list[str], key: str, value: str) -> list[str]:
    """Config `Env` update: an existing key is replaced in place, a new one appended."""
    out = list(env)
    for index, entry in enumerate(out):
        if split_env(entry)[0] == key:
            out[index] = f"{key}={value}"
            return out
    out.append(f"{key}={value}")
    return out


def predefined_args(
    *,
    target_platform: Platform,
    build_platform: Platform,
    target_stage: str,
    build_args: Mapping[str, str],
) -> EnvList:
    """TARGET*/BUILD* args and TARGETSTAGE, each overridable by `--build-arg`.

    Source: dockerfile2llb/platform.go `defaultArgs`.
    """
    defaults = (
        ("BUILDPLATFORM", format_platform(build_platform)),
        ("BUILDOS", build_platform.os),
        ("BUILDOSVERSION", ""),
        ("BUILDARCH", build_platform.architecture),
        ("BUILDVARIANT", build_platform.variant),
        ("TARGETPLATFORM", format_platform(target_platform)),
        ("TARGETOS", target_platform.os),
        ("TARGETOSVERSION", ""),
        ("TARGETARCH", target_platform.architecture),
        ("TARGETVARIANT", target_platform.variant),
        ("TARGETSTAGE", target_stage or "default"),
    )
    return EnvList.from_pairs((key, build_args.get(key, value)) for key, value in defaults)


def proxy_env(build_args: Mapping[str, str], declared: Mapping[str, str]) -> tuple[str, ...]:
    """Proxy build-args as both upper- and lower-case variables, minus those declared by ARG.

    BuildKit passes them with llb.WithProxy (convert.go `proxyEnvFromBuildArgs`), so they
    reach the process without entering the cache key.
    """
    out: list[str] = []
    for key in sorted(build_args):
        upper = key.upper()
        if upper not in PROXY_ARGS:
            continue
        value = build_args[key]
        for name in (upper, upper.lower()):
            if name not in declared and f"{name}={value}" not in out:
                out.append(f"{name}={value}")
    return tuple(out)
