"""Real builds, checked against the image config, history and cache behaviour BuildKit gives.

Each test runs `strata.api.build` with runc and overlay snapshots on a state root shared
by the module (one busybox layer imported once, plus base images that differ only in
their config), then reads the exported config, the files of the result (a local output
next to the image) and the solver's cached/ran lists. Expected values come from
moby/buildkit's dockerfile2llb and its integration tests, not from strata's output.
"""

from __future__ import annotations

import copy
import os
import subprocess
import tarfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from strata.api import BuildRequest, BuildResult, OutputSpec, build
from strata.export.tarball_import import import_tarball
from strata.plan.platforms import format_platform, native_platform
from strata.store.content import ContentStore
from strata.store.images import ImageStore
from strata.store.root import StateRoot
from tests.rootfs import make_busybox_rootfs

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BUSYBOX = "compat/busybox:1"
RICH = "compat/rich:1"
COMMENT = "buildkit.dockerfile.v0"

RICH_RUNTIME: dict[str, Any] = {
    "Env": ["LANG=C.UTF-8"],
    "Entrypoint": ["/bin/echo"],
    "Cmd": ["from", "base"],
    "User": "app",
    "WorkingDir": "/home/app",
    "ExposedPorts": {"22/tcp": {}},
    "Volumes": {"/data": {}},
    "Labels": {"base": "rich"},
    "StopSignal": "SIGQUIT",
    "Shell": ["/bin/sh", "-eu", "-c"],
    "ArgsEscaped": True,
    "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000, "Retries": 2},
}


@dataclass
class Builder:
    """Builds Dockerfiles on the shared root; each call gets a fresh context dir."""

    root: StateRoot
    workdir: Path
    count: int = 0

    def __call__(
        self,
        dockerfile: str,
        files: Mapping[str, str] | None = None,
        *,
        tag: str = "compat/out:latest",
        context: Path | None = None,
        **request: Any,
    ) -> tuple[BuildResult, Path]:
        """Build; returns the result and the directory holding the exported files."""
        self.count += 1
        if context is None:
            context = self.workdir / f"ctx{self.count}"
            context.mkdir()
            for name, text in (files or {}).items():
                (context / name).write_text(text)
        files_out = self.workdir / f"out{self.count}"
        outputs = (OutputSpec(type="image"), OutputSpec(type="local", dest=str(files_out)))
        result = build(
            BuildRequest(
                context=context,
                dockerfile_text=dockerfile,
                tags=(tag,),
                outputs=outputs,
                **request,
            ),
            root=self.root,
        )
        return result, files_out


@pytest.fixture(scope="module")
def compat_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StateRoot]:
    """A state root with the busybox layer under two configs: plain and rich."""
    base = tmp_path_factory.mktemp("compat")
    rootfs = make_busybox_rootfs(base / "rootfs")
    tarball = base / "rootfs.tar"
    subprocess.run(
        ["tar", "--numeric-owner", "--sort=name", "-C", str(rootfs), "-cf", str(tarball), "."],
        check=True,
    )
    root = StateRoot.open(base / "root")
    try:
        images = ImageStore(root)
        with open(tarball, "rb") as fh:
            imported = images.image(import_tarball(images, fh, source="busybox"))
        template = imported.config
        for name, runtime in (
            (BUSYBOX, {"Env": [DEFAULT_PATH], "Cmd": ["sh"]}),
            (RICH, RICH_RUNTIME),
        ):
            config = copy.deepcopy(template)
            config["config"] = copy.deepcopy(runtime)
            images.put(name, images.commit_image(config, imported.layers))
        yield root
    finally:
        root.close()


@pytest.fixture
def builder(compat_root: StateRoot, tmp_path: Path) -> Builder:
    return Builder(compat_root, tmp_path)


def last_layer_entry(root: StateRoot, result: BuildResult, name: str) -> tarfile.TarInfo:
    image = ImageStore(root).load_image(result.image_id)
    with (
        ContentStore(root).open(image.layers[-1].digest) as blob,
        tarfile.open(fileobj=blob, mode="r|*") as layer,
    ):
        for entry in layer:
            if entry.name.strip("/").removeprefix("./") == name:
                return entry
    raise AssertionError(f"{name} is not in the last layer")


def new_history(config: Mapping[str, Any]) -> list[tuple[str, bool]]:
    return [
        (h["created_by"], bool(h.get("empty_layer", False)))
        for h in config["history"]
        if h.get("comment") == COMMENT
    ]


def child_processes(parent: int) -> list[int]:
    """Live (non-zombie) processes whose parent is `parent`, from /proc."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def ran(result: BuildResult, text: str) -> bool:
    return any(name.endswith(text) for name in result.stats.ran)


def cached(result: BuildResult, text: str) -> bool:
    return any(name.endswith(text) for name in result.stats.cached)


# -- config and history --------------------------------------------------------------------


def test_mixed_stage_exports_buildkits_config_history_and_layers(builder: Builder) -> None:
    # dockerfile_test.go testExportedHistory
    result, _ = builder(
        f"""\
FROM {BUSYBOX} AS base
ENV foo=bar
COPY foo /foo2
FROM {BUSYBOX}
LABEL lbl=val
COPY --from=base foo2 foo3
WORKDIR /
RUN echo bar > foo4
RUN ["ls"]
EXPOSE 2375 5000 1234/udp
""",
        {"foo": "contents0"},
    )
    config = result.config
    assert config["config"] == {
        "Env": [DEFAULT_PATH],
        "Cmd": ["sh"],
        "WorkingDir": "/",
        "Labels": {"lbl": "val"},
        "ExposedPorts": {"1234/udp": {}, "2375/tcp": {}, "5000/tcp": {}},
    }
    assert new_history(config) == [
        ("LABEL lbl=val", True),
        ("COPY foo2 foo3 # buildkit", False),
        ("WORKDIR /", True),
        ("RUN /bin/sh -c echo bar > foo4 # buildkit", False),
        ("RUN ls # buildkit", False),
        ("EXPOSE [1234/udp 2375/tcp 5000/tcp]", True),
    ]
    assert len(config["history"]) == 7
    assert len(config["rootfs"]["diff_ids"]) == 4  # busybox + COPY + 2 RUN
    times = [h["created"] for h in config["history"]]
    assert times == sorted(times)
    assert config["created"] == times[-1]


def test_rich_base_config_is_inherited_with_default_path_appended(builder: Builder) -> None:
    result, _ = builder(f"FROM {RICH}\nLABEL added=1\n")
    expected = copy.deepcopy(RICH_RUNTIME)
    expected["Env"] = ["LANG=C.UTF-8", DEFAULT_PATH]
    expected["Labels"] = {"base": "rich", "added": "1"}
    assert result.config["config"] == expected
    assert new_history(result.config) == [("LABEL added=1", True)]


def test_every_metadata_instruction_lands_in_config_and_history(builder: Builder) -> None:
    result, _ = builder(
        f"""\
FROM {BUSYBOX}
MAINTAINER Jane <jane@example.com>
ENV A=1 B="two words"
ENV A=again
LABEL version=1.0 "com.example.vendor"="ACME Inc"
EXPOSE 8080-8081/UDP 80
VOLUME ["/var/lib/app", "/cache"]
STOPSIGNAL SIGINT
HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD wget -q -O- http://localhost/
SHELL ["/bin/sh", "-ec"]
USER 1000:1000
WORKDIR /srv/app
ENTRYPOINT ["/bin/echo"]
CMD run "$APP"
ONBUILD RUN echo for-children
""",
        labels={"cli": "label"},
    )
    assert result.config["author"] == "Jane <jane@example.com>"
    assert result.config["config"] == {
        "Env": [DEFAULT_PATH, "A=again", "B=two words"],
        "Labels": {"version": "1.0", "com.example.vendor": "ACME Inc", "cli": "label"},
        "ExposedPorts": {"80/tcp": {}, "8080/udp": {}, "8081/udp": {}},
        "Volumes": {"/var/lib/app": {}, "/cache": {}},
        "StopSignal": "SIGINT",
        "Healthcheck": {
            "Test": ["CMD-SHELL", "wget -q -O- http://localhost/"],
            "Interval": 30_000_000_000,
            "Timeout": 3_000_000_000,
            "Retries": 3,
        },
        "Shell": ["/bin/sh", "-ec"],
        "User": "1000:1000",
        "WorkingDir": "/srv/app",
        "Entrypoint": ["/bin/echo"],
        "Cmd": ["/bin/sh", "-ec", 'run "$APP"'],
        "ArgsEscaped": True,
        "OnBuild": ["RUN echo for-children"],
    }
    assert new_history(result.config) == [
        ("MAINTAINER Jane <jane@example.com>", True),
        ("ENV A=1 B=two words", True),
        ("ENV A=again", True),
        ("LABEL version=1.0 com.example.vendor=ACME Inc", True),
        ("EXPOSE [80/tcp 8080/udp 8081/udp]", True),
        ("VOLUME [/var/lib/app /cache]", True),
        ("STOPSIGNAL SIGINT", True),
        (
            "HEALTHCHECK {Test:[CMD-SHELL wget -q -O- http://localhost/] Interval:30s "
            "Timeout:3s StartPeriod:0s StartInterval:0s Retries:3}",
            True,
        ),
        ("SHELL [/bin/sh -ec]", True),
        ("USER 1000:1000", True),
        ("WORKDIR /srv/app", False),
        ('ENTRYPOINT ["/bin/echo"]', True),
        ('CMD ["/bin/sh" "-ec" "run \\"$APP\\""]', True),
    ]


def test_entrypoint_clears_the_base_cmd_but_not_a_cmd_of_its_stage(builder: Builder) -> None:
    cleared, _ = builder(f'FROM {BUSYBOX}\nENTRYPOINT ["/bin/echo"]\n')
    assert "Cmd" not in cleared.config["config"]
    kept, _ = builder(f'FROM {BUSYBOX}\nCMD ["hi"]\nENTRYPOINT ["/bin/echo"]\n')
    assert kept.config["config"]["Cmd"] == ["hi"]
    emptied, _ = builder(f"FROM {RICH}\nENTRYPOINT []\n")
    assert "Entrypoint" not in emptied.config["config"]
    assert "Cmd" not in emptied.config["config"]


def test_only_the_target_stage_config_and_layers_are_exported(builder: Builder) -> None:
    dockerfile = f"""\
FROM {BUSYBOX} AS build
ENV BUILD=1
RUN echo built > /out
CMD ["build"]
FROM scratch AS final
COPY --from=build /out /out
LABEL stage=final
"""
    final, files = builder(dockerfile)
    assert final.config["config"] == {
        "Env": [DEFAULT_PATH],
        "WorkingDir": "/",
        "Labels": {"stage": "final"},
    }
    assert [h["created_by"] for h in final.config["history"]] == [
        "COPY /out /out # buildkit",
        "LABEL stage=final",
    ]
    assert len(final.config["rootfs"]["diff_ids"]) == 1
    assert (files / "out").read_text() == "built\n"
    build_stage, _ = builder(dockerfile, target="build")
    assert build_stage.config["config"]["Cmd"] == ["build"]
    assert build_stage.config["config"]["Env"] == [DEFAULT_PATH, "BUILD=1"]
    assert len(build_stage.config["rootfs"]["diff_ids"]) == 2


def test_workdir_root_adds_no_layer_while_other_workdirs_do(builder: Builder) -> None:
    result, files = builder(f"FROM {BUSYBOX}\nUSER app\nWORKDIR /\nWORKDIR /made/by/app\n")
    assert new_history(result.config) == [
        ("USER app", True),
        ("WORKDIR /", True),
        ("WORKDIR /made/by/app", False),
    ]
    assert len(result.config["rootfs"]["diff_ids"]) == 2
    # Read the owner from the image's layer: `-o type=local` hands files to the caller,
    # as BuildKit's client does, so the exported tree cannot show it.
    made = last_layer_entry(builder.root, result, "made/by/app")
    assert (made.uid, made.gid, oct(made.mode & 0o7777)) == (1000, 1000, "0o755")
    assert (files / "made" / "by" / "app").is_dir()


def test_workdir_creates_missing_dirs_keeps_existing_ones_and_copy_from_ignores_it(
    builder: Builder,
) -> None:
    # dockerfile_workdir_test.go testWorkdirCreatesDir, testWorkdirExists,
    # testWorkdirCopyIgnoreRelative
    _, files = builder("FROM scratch\nWORKDIR /foo\nWORKDIR /\n")
    assert (files / "foo").is_dir()
    _, files = builder(
        f"FROM {BUSYBOX}\nRUN mkdir /mydir && chown app:app /mydir && chmod 700 /mydir\n"
        "WORKDIR /mydir\nRUN stat -c '%U %G %a' /mydir > /owner\n"
    )
    assert (files / "owner").read_text() == "app app 700\n"
    _, files = builder(
        f"FROM {BUSYBOX} AS base\nWORKDIR /foo\nCOPY Dockerfile.txt /\n"
        f"FROM {BUSYBOX}\nWORKDIR /bar\nCOPY --from=base Dockerfile.txt .\n",
        {"Dockerfile.txt": "copied\n"},
    )
    assert (files / "bar" / "Dockerfile.txt").read_text() == "copied\n"


def test_source_date_epoch_pins_new_history_and_created(builder: Builder) -> None:
    result, _ = builder(
        f"FROM {BUSYBOX}\nRUN echo x > /x\nENV A=1\n", build_args={"SOURCE_DATE_EPOCH": "86400"}
    )
    history = result.config["history"]
    assert [h["created"] for h in history[1:]] == ["1970-01-02T00:00:00Z"] * 2
    assert history[0]["created"] != "1970-01-02T00:00:00Z"
    assert result.config["created"] == "1970-01-02T00:00:00Z"


# -- what RUN sees -------------------------------------------------------------------------


def test_run_env_follows_arg_and_env_rules_while_config_env_does_not(builder: Builder) -> None:
    result, files = builder(
        f"""\
ARG G=global
FROM {BUSYBOX}
ENV Z=1 A=base V=env
ARG B=default
ENV A=again
ARG V=arg
ARG UNSET
ARG EMPTY=
RUN ["/bin/cp", "/proc/self/environ", "/environ"]
RUN echo "G=[$G]" > /g-before
ARG G
RUN echo "G=[$G]" > /g-after
""",
        build_args={"B": "cli", "UNDECLARED": "x"},
    )
    # read from an exec-form step: a shell would re-order its variables
    env = (files / "environ").read_text().split("\0")
    ours = [line for line in env if line.split("=", 1)[0] in {"Z", "A", "V", "B", "EMPTY", "UNSET"}]
    # the RUN environment lists keys in the order of their last assignment (llb.EnvList)
    assert ours == ["Z=1", "B=cli", "A=again", "V=arg", "EMPTY="]
    assert not any(line.startswith(("UNDECLARED=", "G=")) for line in env)
    assert (files / "g-before").read_text() == "G=[]\n"
    assert (files / "g-after").read_text() == "G=[global]\n"
    assert result.config["config"]["Env"] == [DEFAULT_PATH, "Z=1", "A=again", "V=env"]
    assert new_history(result.config)[-3:] == [
        ('RUN |4 B=cli V=arg UNSET= EMPTY= /bin/sh -c echo "G=[$G]" > /g-before # buildkit', False),
        ("ARG G=global", True),
        (
            'RUN |5 B=cli V=arg UNSET= EMPTY= G=global /bin/sh -c echo "G=[$G]" > /g-after '
            "# buildkit",
            False,
        ),
    ]


def test_predefined_platform_args_reach_run_only_when_declared(builder: Builder) -> None:
    native = native_platform()
    _, files = builder(
        f'FROM {BUSYBOX}\nRUN echo "[$TARGETARCH]" > /before\n'
        "ARG TARGETARCH TARGETOS TARGETPLATFORM TARGETSTAGE\n"
        'RUN echo "$TARGETOS $TARGETARCH $TARGETPLATFORM $TARGETSTAGE" > /after\n'
    )
    assert (files / "before").read_text() == "[]\n"
    assert (files / "after").read_text() == (
        f"{native.os} {native.architecture} {format_platform(native)} default\n"
    )


def test_shell_user_and_workdir_are_those_of_the_running_step(builder: Builder) -> None:
    _, files = builder(
        f"""\
FROM {BUSYBOX}
RUN echo "$0" > /shell-before
SHELL ["/bin/busybox", "sh", "-c"]
RUN echo "$0" > /shell-after
USER app
WORKDIR /tmp/work
RUN id -u > /tmp/work/uid && pwd > /tmp/work/pwd
"""
    )
    assert (files / "shell-before").read_text() == "/bin/sh\n"
    assert (files / "shell-after").read_text() == "sh\n"
    assert (files / "tmp" / "work" / "uid").read_text() == "1000\n"
    assert (files / "tmp" / "work" / "pwd").read_text() == "/tmp/work\n"


def test_inherited_shell_user_and_workdir_apply_to_run(builder: Builder) -> None:
    result, files = builder(f'FROM {RICH}\nRUN id -u > uid && pwd > pwd && echo "$LANG" > lang\n')
    home = files / "home" / "app"
    assert (home / "uid").read_text() == "1000\n"
    assert (home / "pwd").read_text() == "/home/app\n"
    assert (home / "lang").read_text() == "C.UTF-8\n"
    assert new_history(result.config) == [
        (
            'RUN /bin/sh -eu -c id -u > uid && pwd > pwd && echo "$LANG" > lang # buildkit',
            False,
        )
    ]


def test_volume_contents_written_after_the_volume_are_kept(builder: Builder) -> None:
    # VOLUME is config only: the directory is not created for the build
    result, files = builder(
        f"FROM {BUSYBOX}\nVOLUME /data\nRUN mkdir /data && echo kept > /data/file\n"
    )
    assert result.config["config"]["Volumes"] == {"/data": {}}
    assert (files / "data" / "file").read_text() == "kept\n"


def test_heredoc_runs_execute_and_record_their_script(builder: Builder) -> None:
    result, files = builder(
        f'FROM {BUSYBOX}\nENV NAME=world\nRUN <<EOF\necho "hello $NAME" > /greeting\nEOF\n'
        'RUN <<EOF\n#!/bin/sh\necho "$0" > /script\nEOF\n'
    )
    assert (files / "greeting").read_text() == "hello world\n"
    assert (files / "script").read_text() == "/dev/pipes/EOF\n"
    assert new_history(result.config)[1:] == [
        ('RUN /bin/sh -c echo "hello $NAME" > /greeting\n # buildkit', False),
        ("RUN /bin/sh -c /dev/pipes/EOF # buildkit", False),
    ]
    assert any(n.endswith('RUN <<EOF (echo "hello world" > /greeting)') for n in result.stats.ran)


# -- ONBUILD -------------------------------------------------------------------------------


def test_onbuild_triggers_run_in_child_images_and_are_not_passed_on(builder: Builder) -> None:
    parent, _ = builder(
        f"""\
FROM {BUSYBOX}
ONBUILD ARG WHO=child
ONBUILD RUN echo "triggered for $WHO" >> /triggered
ONBUILD ENV FROM_TRIGGER=1
ONBUILD COPY --from={BUSYBOX} /etc/group /copied-group
RUN echo parent > /parent
""",
        tag="compat/parent:1",
    )
    assert parent.config["config"]["OnBuild"] == [
        "ARG WHO=child",
        'RUN echo "triggered for $WHO" >> /triggered',
        "ENV FROM_TRIGGER=1",
        f"COPY --from={BUSYBOX} /etc/group /copied-group",
    ]
    assert new_history(parent.config) == [
        ("RUN /bin/sh -c echo parent > /parent # buildkit", False)
    ]
    child, files = builder("FROM compat/parent:1\nRUN cat /triggered /parent > /seen\n")
    assert (files / "seen").read_text() == "triggered for child\nparent\n"
    assert "OnBuild" not in child.config["config"]
    assert child.config["config"]["Env"] == [DEFAULT_PATH, "FROM_TRIGGER=1"]
    assert (files / "copied-group").read_text().startswith("root:x:0:")
    assert new_history(child.config)[-5:] == [
        ("ARG WHO=child", True),
        ('RUN |1 WHO=child /bin/sh -c echo "triggered for $WHO" >> /triggered # buildkit', False),
        ("ENV FROM_TRIGGER=1", True),
        ("COPY /etc/group /copied-group # buildkit", False),
        ("RUN |1 WHO=child /bin/sh -c cat /triggered /parent > /seen # buildkit", False),
    ]
    # n counts all three triggers; the FROM step was named before they were known
    steps = sorted(n for n in child.stats.ran + child.stats.cached if n.startswith("["))
    assert [n.split("@")[0] for n in steps] == [
        "[1/2] FROM docker.io/compat/parent:1",
        '[2/6] ONBUILD RUN echo "triggered for child" >> /triggered',
        f"[3/6] ONBUILD COPY --from={BUSYBOX} /etc/group /copied-group",
        "[4/6] RUN cat /triggered /parent > /seen",
    ]
    # dockerfile_onbuild_test.go testOnBuildCleared: a grandchild runs no trigger again
    grandchild, files = builder("FROM compat/out:latest\nRUN true\n")
    assert (files / "triggered").read_text() == "triggered for child\n"
    assert new_history(grandchild.config)[-1] == ("RUN /bin/sh -c true # buildkit", False)
    # testOnBuildWithChildStage: a stage based on the triggered stage runs none either
    _, files = builder(
        "FROM compat/parent:1 AS base\nRUN rm /triggered\n"
        "FROM base AS child\nRUN [ ! -f /triggered ] && touch /step3\n"
    )
    assert (files / "step3").exists()


def test_stage_triggers_run_in_the_child_stage_and_copy_from_its_stages(builder: Builder) -> None:
    # dockerfile_onbuild_test.go testOnBuildInheritedStageRun / ...StageWithFrom
    result, files = builder(
        f"FROM {BUSYBOX} AS src\nRUN echo -n 12 > /file\n"
        f"FROM {BUSYBOX} AS parent\nONBUILD RUN echo -n 11 >> /trig\n"
        "ONBUILD COPY --from=src /file /copied\n"
        "FROM parent\nRUN cat /trig /copied > /both\n"
    )
    assert (files / "both").read_text() == "1112"
    assert "OnBuild" not in result.config["config"]


# -- which steps re-run after an edit ------------------------------------------------------

CACHE_STAGE = """\
FROM {base}
RUN echo first > /first
{edit}
COPY app /app
RUN cat /app > /second
"""


def test_config_only_edits_rerun_nothing_and_reverting_restores_the_image_id(
    builder: Builder, tmp_path: Path
) -> None:
    context = tmp_path / "shared"
    context.mkdir()
    (context / "app").write_text("app\n")
    text = CACHE_STAGE.format(base=BUSYBOX, edit="LABEL v=1\nEXPOSE 80")
    first, _ = builder(text, context=context)
    edited, _ = builder(
        CACHE_STAGE.format(base=BUSYBOX, edit='LABEL v=2\nEXPOSE 81\nCMD ["x"]'), context=context
    )
    assert not [n for n in edited.stats.ran if "RUN" in n or "COPY" in n]
    assert edited.image_id != first.image_id
    again, _ = builder(text, context=context)
    assert again.image_id == first.image_id


def test_env_edit_reruns_later_runs_only(builder: Builder, tmp_path: Path) -> None:
    context = tmp_path / "shared"
    context.mkdir()
    (context / "app").write_text("app\n")
    builder(CACHE_STAGE.format(base=BUSYBOX, edit="ENV MODE=1"), context=context)
    edited, _ = builder(CACHE_STAGE.format(base=BUSYBOX, edit="ENV MODE=2"), context=context)
    assert cached(edited, "RUN echo first > /first")
    assert cached(edited, "COPY app /app")
    assert ran(edited, "RUN cat /app > /second")


def test_build_args_rerun_from_the_first_run_after_a_declared_arg(
    builder: Builder, tmp_path: Path
) -> None:
    context = tmp_path / "shared"
    context.mkdir()
    (context / "app").write_text("app\n")
    text = CACHE_STAGE.format(base=BUSYBOX, edit="ARG LEVEL=1")
    first, _ = builder(text, context=context)
    undeclared, _ = builder(text, context=context, build_args={"OTHER": "x"})
    assert undeclared.image_id == first.image_id
    assert not [n for n in undeclared.stats.ran if "RUN" in n or "COPY" in n]
    declared, _ = builder(text, context=context, build_args={"LEVEL": "2"})
    assert cached(declared, "RUN echo first > /first")
    assert cached(declared, "COPY app /app")
    assert ran(declared, "RUN cat /app > /second")
    assert new_history(declared.config)[1] == ("ARG LEVEL=2", True)


def test_user_edit_reruns_later_runs_and_a_changed_shell_too(
    builder: Builder, tmp_path: Path
) -> None:
    context = tmp_path / "shared"
    context.mkdir()
    (context / "app").write_text("app\n")
    builder(CACHE_STAGE.format(base=BUSYBOX, edit="USER root"), context=context)
    user, _ = builder(CACHE_STAGE.format(base=BUSYBOX, edit="USER 0"), context=context)
    assert cached(user, "COPY app /app")
    assert ran(user, "RUN cat /app > /second")
    shell, _ = builder(
        CACHE_STAGE.format(base=BUSYBOX, edit='SHELL ["/bin/sh", "-ec"]'), context=context
    )
    assert cached(shell, "COPY app /app")
    assert ran(shell, "RUN cat /app > /second")


def test_builds_do_not_leave_processes_or_mounts(builder: Builder) -> None:
    builder(f"FROM {BUSYBOX}\nRUN echo done > /done\n")
    assert child_processes(os.getpid()) == []
