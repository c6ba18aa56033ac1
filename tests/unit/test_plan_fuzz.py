"""Whatever parseable Dockerfile it is given, the planner returns a plan or a StrataError.

The Dockerfiles are assembled from fragments a user could plausibly write, good and bad:
odd image references and platforms, ARG/ENV expansions, COPY/ADD flags with URLs, git
references and checksums, RUN mounts, and the values of the small instructions. An
exception of any other kind (ValueError from a URL, KeyError, IndexError, ...) is a bug.
"""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strata.dockerfile.parser import parse
from strata.errors import StrataError
from strata.plan.convert import plan_build
from strata.plan.ops import Platform
from strata.plan.result import ResolvedImage

# Each pool: fragments that usually plan, and odd ones that should fail cleanly.
IMAGES = [
    "busybox",
    "scratch",
    "base",
    "alpine:3.20",
    "localhost:5000/a/b:t",
    "a@sha256:" + "1" * 64,
    "$IMG",
    "${IMG:-busybox}",
    "0",
]
ODD_IMAGES = [
    "Base",
    "alpine}",
    '["a"]',
    "CMD",
    "a@sha256:12",
    "a:@",
    "${IMG:?need}",
    "[::1]:5000/x",
    "a" * 300,
    "1" * 64,
]
PLATFORMS = [
    "",
    "",
    "--platform=linux/amd64 ",
    "--platform=$BUILDPLATFORM ",
    "--platform=$TARGETPLATFORM ",
    "--platform=windows(10.0.1) ",
    "--platform=macos ",
    "--platform=arm64 ",
]
ODD_PLATFORMS = [
    "--platform=$NOPE ",
    "--platform=lin[ux ",
    "--platform=linux/arm/v7/x ",
    "--platform=* ",
]
NAMES = ["", " AS base", " AS t", " AS Base", " as x"]
ODD_NAMES = [" AS bad^name", " AS 0"]
SOURCES = [
    "a",
    ".",
    "/",
    "*.txt",
    "a[",
    "https://example.com/f.tgz",
    "https://github.[com/moby/buildkit.git#v0.10.1",
    "https://a/b.git#main:sub",
    "https://a%zz/b",
    "https://[::1/b",
    "https://a:xx/b",
    "http://",
    "https://",
    "HTTPS://a/b.git",
    "git@github.com:o/r.git#main",
    "git@h:r?x=%zz",
    "$SRC",
    "é",
]
ODD_SOURCES = [
    "https://a/b.git?ref=x&tag=y",
    "https://a/b.git?keep-git-dir=maybe",
    "git://h/r?submodules=no",
    "ssh://a/b?mtime=now",
    "github.com/o/r?x=1",
    "${SRC:?gone}",
]
COPY_FLAGS = [
    "--from=base ",
    "--from=0 ",
    "--from=alpine:3 ",
    "--chown=1:2 ",
    "--chown=$U ",
    "--chmod=755 ",
    "--chmod=u+x ",
    "--link ",
    "--parents ",
    "--exclude=*.md ",
    "--checksum=sha256:" + "0" * 64 + " ",
    "--keep-git-dir=true ",
    "--unpack=false ",
]
ODD_COPY_FLAGS = [
    "--from=9 ",
    "--from=bui]ld ",
    "--from=$X ",
    "--chmod=9999 ",
    "--chmod=x ",
    "--checksum=sha25]6:00 ",
    "--checksum=md5:00 ",
    "--checksum=sha256:00 ",
]
MOUNTS = [
    "--mount=type=cache,target=/c ",
    "--mount=type=bind,from=base,target=/b ",
    "--mount=type=bind,from=0,target=/b ",
    "--mount=type=secret,id=s ",
    "--mount=type=secret,id=s,env=S ",
    "--mount=type=ssh ",
    "--network=none ",
    "--security=insecure ",
]
ODD_MOUNTS = [
    "--mount=type=cache,target=/c,uid=x ",
    "--mount=type=cache,target=/c,sharing=odd ",
    "--mount=type=bind,from=bui]ld,target=/b ",
    "--mount=type=tmpfs,target=/t,size=1x ",
    "--mount=type=tmpfs,target=/ ",
    "--mount=target=/m,from=$X ",
    "--network=odd ",
]
SMALL = [
    "EXPOSE 80",
    "EXPOSE [::1]:80",
    "EXPOSE 1-2/udp",
    "EXPOSE $P",
    "HEALTHCHECK CMD true",
    "HEALTHCHECK --interval=1s --retries=3 CMD true",
    "HEALTHCHECK NONE",
    "STOPSIGNAL SIGKILL",
    "STOPSIGNAL 9",
    "STOPSIGNAL $SIG",
    "USER app",
    "USER 1000:1000",
    "USER $U",
    "WORKDIR /w",
    "WORKDIR rel",
    "WORKDIR $W",
    "VOLUME /v",
    "ENV A=1 B=$A",
    "ENV A ${B:-c}",
    "ARG A",
    "ARG A=$B",
    "ARG SOURCE_DATE_EPOCH=1",
    "ARG IMG=busybox",
    "ARG PASSWORD=x",
    "LABEL a=b",
    "CMD echo",
    'CMD ["a"]',
    "ENTRYPOINT echo",
    'SHELL ["/bin/sh", "-c"]',
    "ONBUILD RUN true",
    "ONBUILD COPY --from=base a b",
    "MAINTAINER me",
]
ODD_SMALL = [
    "EXPOSE 80/XYZ",
    "EXPOSE 99999",
    "STOPSIGNAL NOPE",
    "WORKDIR ${W:?x}",
    'VOLUME [""]',
    "ARG SOURCE_DATE_EPOCH=src",
    "ONBUILD COPY --x a b",
    "ENV A",
]
GLOBALS = [
    "",
    "",
    "ARG IMG=busybox\n",
    "ARG IMG\n",
    "ARG SOURCE_DATE_EPOCH=1\n",
    "# check=skip=all\n",
    "# check=skip=JSONArgsRecommended,UndefinedVar\n",
]
ODD_GLOBALS = [
    "ARG A=${B:?err}\n",
    "ARG SOURCE_DATE_EPOCH=src\n",
    "ARG SOURCE_DATE_EPOCH=x y\n",
    "# check=error=true\n",
    "# check=skip=JSONArgsRecommended;error=true\n",
    "# check=error=maybe\n",
]


def _pick(draw: st.DrawFn, usual: list[str], odd: list[str]) -> str:
    """Mostly a fragment that plans, sometimes one that should fail: both paths get tried."""
    return draw(st.sampled_from(odd if draw(st.integers(0, 11)) == 0 else usual))


def _flags(draw: st.DrawFn, usual: list[str], odd: list[str]) -> str:
    count = draw(st.integers(0, 2))
    return "".join(dict.fromkeys(_pick(draw, usual, odd) for _ in range(count)))


def _sources(draw: st.DrawFn) -> str:
    count = draw(st.integers(1, 2))
    return " ".join(_pick(draw, SOURCES, ODD_SOURCES) for _ in range(count))


@st.composite
def instruction(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["copy", "add", "run", "small", "small", "from"]))
    if kind in ("copy", "add"):
        flags = _flags(draw, COPY_FLAGS, ODD_COPY_FLAGS)
        return f"{kind.upper()} {flags}{_sources(draw)} /dest/"
    if kind == "run":
        return f"RUN {_flags(draw, MOUNTS, ODD_MOUNTS)}echo $A"
    if kind == "from":
        return _from_line(draw)
    return _pick(draw, SMALL, ODD_SMALL)


def _from_line(draw: st.DrawFn) -> str:
    platform = _pick(draw, PLATFORMS, ODD_PLATFORMS)
    image = _pick(draw, IMAGES, ODD_IMAGES)
    name = _pick(draw, NAMES, ODD_NAMES)
    return f"FROM {platform}{image}{name}"


@st.composite
def dockerfile(draw: st.DrawFn) -> tuple[str, str | None]:
    lines = [_pick(draw, GLOBALS, ODD_GLOBALS) + _from_line(draw)]
    lines.extend(draw(st.lists(instruction(), max_size=6)))
    if draw(st.booleans()):
        lines.append(f"FROM {_pick(draw, IMAGES, ODD_IMAGES)} AS src")
        lines.append("ADD https://example.com/a.tgz /")
    target = draw(st.sampled_from([None, None, None, "base", "src", "nope"]))
    return "\n".join(lines) + "\n", target


def _resolve(ref: str, platform: Platform) -> ResolvedImage:
    config: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "2" * 64]},
        "config": {"Env": ["PATH=/usr/bin:/bin"]},
    }
    return ResolvedImage(ref=ref, manifest_digest="sha256:" + "1" * 64, config=config)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dockerfile(), st.sampled_from([{}, {}, {"IMG": "Bad^"}, {"SRC": "https://a/b"}]))
def test_planner_only_ever_raises_strata_errors(
    case: tuple[str, str | None], build_args: dict[str, str]
) -> None:
    text, target = case
    try:
        df = parse(text)
    except StrataError:
        return
    with contextlib.suppress(StrataError):
        plan_build(df, target=target, build_args=build_args, resolve_image=_resolve)
