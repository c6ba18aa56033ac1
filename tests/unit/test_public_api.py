"""strata as a library, through its public names only (`strata`, `strata.dockerfile`,
`strata.api`): what a program embedding strata can rely on, and the requests it can
make that no CLI flag would (each refused before any work is done)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

import strata
import strata.api
import strata.dockerfile
from strata import (
    BuildRequest,
    BuildResult,
    DebugSession,
    OutputSpec,
    ProgressBus,
    UsageError,
    build,
    make_printer,
    metadata_of,
)
from strata.dockerfile import PatternMatcher, expand, expand_words, parse, parse_stages


def test_every_name_in_strata_all_is_importable_and_the_api_ones_are_the_same_objects() -> None:
    for name in strata.__all__:
        assert getattr(strata, name) is not None, name
    for name in ("BuildRequest", "BuildResult", "DebugSession", "OutputSpec", "build"):
        assert getattr(strata, name) is getattr(strata.api, name)
    assert strata.DebugSession is DebugSession
    for name in ("parse", "expand", "expand_words", "parse_stages", "PatternMatcher"):
        assert name in strata.dockerfile.__all__


def test_frontend_parses_groups_stages_and_expands_as_buildkit() -> None:
    dockerfile = parse(
        "ARG BASE=scratch\nFROM $BASE AS build\nRUN true\nFROM scratch\nCOPY --from=build / /\n",
        filename="Dockerfile.lib",
    )
    assert [node.value for node in dockerfile.children] == ["arg", "from", "run", "from", "copy"]
    definition = parse_stages(dockerfile)
    assert [stage.name for stage in definition.stages] == ["build", None]
    assert definition.file == "Dockerfile.lib"
    assert expand("$A-${B:-x}", {"A": "1"}) == "1-x"
    assert expand_words('one "two three" $W', {"W": "four five"}) == [
        "one",
        "two three",
        "four",
        "five",
    ]
    matcher = PatternMatcher(["*.log", "!keep.log"])
    assert matcher.matches("debug.log")
    assert not matcher.matches("keep.log")


def test_build_with_a_public_progress_bus_exports_files_and_reports_steps(
    tmp_path: Path,
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /greeting/\n")
    (context / "hello.txt").write_text("hello\n")
    stream = io.StringIO()
    bus = ProgressBus(make_printer("plain", stream))
    out = tmp_path / "out"
    request = BuildRequest(
        context=context,
        outputs=(OutputSpec(type="local", dest=str(out)),),
        snapshotter="native",
    )
    try:
        result = build(request, root=tmp_path / "root", bus=bus)
    finally:
        bus.close()
    assert isinstance(result, BuildResult)
    assert (out / "greeting" / "hello.txt").read_text() == "hello\n"
    assert "COPY hello.txt /greeting/" in stream.getvalue()
    # A files-only export makes no image, so the metadata has no image keys.
    assert result.image_id == ""
    assert metadata_of(result) == {}


def _request(context: Path, **fields: Any) -> BuildRequest:
    """A request with fields of any value, as an untyped caller could make one."""
    return BuildRequest(context=context, **fields)


@pytest.mark.parametrize(
    ("fields", "message", "option"),
    [
        ({"network": "bogus"}, 'invalid network mode "bogus"', "--network"),
        ({"allow": ["network.hots"]}, "invalid entitlement: network.hots", "--allow"),
        (
            {"tags": ["ok:1", "Bad"]},
            'invalid tag "Bad": invalid reference format: repository name (library/Bad) '
            "must be lowercase",
            "--tag",
        ),
        ({"on_error": "ignore"}, 'invalid on-error value "ignore"', "--on-error"),
        ({"runtime": "kata"}, 'unknown OCI runtime "kata"', "--oci-runtime"),
        ({"snapshotter": "zfs"}, 'unknown snapshotter "zfs"', "--snapshotter"),
    ],
    ids=["network", "allow", "tag", "on-error", "runtime", "snapshotter"],
)
def test_build_refuses_a_bad_request_before_opening_the_state_root(
    tmp_path: Path, fields: dict[str, Any], message: str, option: str
) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    root = tmp_path / "root"
    with pytest.raises(UsageError) as caught:
        build(_request(tmp_path, **fields), root=root)
    assert caught.value.message.startswith(message)
    assert caught.value.option == option
    assert not root.exists()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "bogus", "dest": "out.tar"}, 'unsupported output type "bogus"'),
        ({"type": "local"}, "dest is required for local exporter"),
        ({"type": "tar"}, "dest is required for tar exporter"),
        ({"type": "oci", "dest": ""}, "dest is required for oci exporter"),
        ({"type": "local", "dest": "-"}, "local exporter cannot write to stdout"),
    ],
    ids=["unknown-type", "local-no-dest", "tar-no-dest", "oci-empty-dest", "local-stdout"],
)
def test_output_spec_refuses_what_dash_o_refuses(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match="^" + message) as caught:
        OutputSpec(**fields)
    assert caught.value.option == "--output"


def test_output_spec_without_dest_for_image_and_docker_means_the_image_store() -> None:
    assert OutputSpec(type="image").dest is None
    assert OutputSpec(type="docker").dest is None


def test_api_keeps_metadata_of_and_the_cli_writes_the_iid_and_metadata_files(
    tmp_path: Path,
) -> None:
    from strata.cli.build import write_iidfile, write_metadata_file
    from strata.solver.solve import SolveStats

    assert not hasattr(strata.api, "write_iidfile")
    assert not hasattr(strata.api, "write_metadata_file")
    result = BuildResult(
        image_id="sha256:" + "c" * 64,
        manifest_digest="sha256:" + "m" * 64,
        names=("docker.io/library/app:1",),
        config={},
        stats=SolveStats(),
        manifest_size=321,
    )
    write_iidfile(tmp_path / "iid", result)
    write_metadata_file(tmp_path / "meta.json", result)
    assert (tmp_path / "iid").read_text() == result.image_id
    assert json.loads((tmp_path / "meta.json").read_text()) == metadata_of(result)
    assert metadata_of(result)["containerimage.descriptor"]["size"] == 321
