"""The resolve policy seen from outside: a tag is asked again each build (a moved tag is
followed), a digest-pinned base already stored needs no request at all, and a
`# syntax=` line is noted, never pulled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.pull_support import build, project, run_strata
from tests.integration.registry_servers import (
    registry_available,
    registry_server,
    seed_image,
    skopeo_available,
)

_missing = registry_available() or skopeo_available()
pytestmark = [
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.timeout(300),
]


def test_a_moved_tag_is_followed_and_a_pinned_digest_needs_no_request(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with registry_server(tmp_path) as reg:
        old = seed_image(reg, "app/moving", "1", tmp_path, files={"v.txt": b"old\n"})
        by_tag = project(tmp_path / "tag", f"FROM {old.reference}\nCOPY f /f\n", {"f": "x"})
        first = build(root, by_tag)
        new = seed_image(reg, "app/moving", "1", tmp_path, files={"v.txt": b"new\n"})
        before_second = len(reg.requests())
        second = build(root, by_tag)
        during_second = reg.requests()[before_second:]

        pinned_ref = f"{reg.host}/app/moving@{old.manifest_digest}"
        pinned = project(tmp_path / "pinned", f"FROM {pinned_ref}\nCOPY g /g\n", {"g": "y"})
        before_pinned = len(reg.requests())
        third = build(root, pinned)
        during_pinned = reg.requests()[before_pinned:]

    assert first.returncode == 0, first.stderr.decode()
    assert second.returncode == 0, second.stderr.decode()
    assert new.layer_digests != old.layer_digests
    fetched = {e.path for e in during_second if e.method == "GET" and e.status == 200}
    assert f"/v2/app/moving/blobs/{new.layer_digests[0]}" in fetched, during_second
    assert f"/v2/app/moving/blobs/{old.layer_digests[0]}" not in fetched
    assert "CACHED" not in "\n".join(
        line for line in second.stderr.decode().splitlines() if "COPY f /f" in line
    )

    assert third.returncode == 0, third.stderr.decode()
    assert f"[internal] load metadata for {pinned_ref}" in third.stderr.decode()
    assert during_pinned == []
    assert "using the image stored locally" not in third.stderr.decode()


def test_a_syntax_line_is_noted_and_never_pulled(tmp_path: Path) -> None:
    with registry_server(tmp_path) as reg:
        image = seed_image(reg, "app/base", "1", tmp_path)
        context = project(
            tmp_path / "ctx",
            f"# syntax={reg.host}/docker/dockerfile:1.7\nFROM {image.reference}\nCOPY f /f\n",
            {"f": "x"},
        )
        done = build(tmp_path / "root", context)
        asked = [e.path for e in reg.requests() if "dockerfile" in e.path]

    log = done.stderr.decode()
    assert done.returncode == 0, log
    assert asked == []
    assert log.count("not pulled, strata reads the Dockerfile itself") == 1, log


def test_layer_downloads_are_statuses_of_the_from_vertex_in_rawjson(tmp_path: Path) -> None:
    with registry_server(tmp_path) as reg:
        image = seed_image(reg, "app/base", "1", tmp_path)
        context = project(tmp_path / "ctx", f"FROM {image.reference}\nCOPY f /f\n", {"f": "x"})
        done = run_strata(tmp_path / "root", "build", "--progress=rawjson", str(context))

    assert done.returncode == 0, done.stderr.decode()
    events = [json.loads(line) for line in done.stderr.decode().splitlines() if line.strip()]
    names = {v["digest"]: v["name"] for e in events for v in e.get("vertexes", [])}
    layer = image.layer_digests[0]
    statuses = [s for e in events for s in e.get("statuses", []) if s["id"] == layer]
    assert statuses, events
    assert {names[s["vertex"]] for s in statuses} == {
        f"[1/2] FROM {image.reference}@{image.manifest_digest}"
    }
    finished = [s for s in statuses if s.get("completed")]
    assert finished and finished[-1]["current"] == finished[-1]["total"] > 0


def test_an_image_made_here_wins_over_the_registry_unless_pull_is_given(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with registry_server(tmp_path) as reg:
        remote = seed_image(reg, "app/shadow", "1", tmp_path, files={"r.txt": b"remote\n"})
        # An image of the same name made here (built FROM the registry's, plus a file).
        made = build(
            root,
            project(tmp_path / "made", f"FROM {remote.reference}\nCOPY l /l\n", {"l": "local"}),
            "-t",
            remote.reference,
        )
        use = project(tmp_path / "use", f"FROM {remote.reference}\nCOPY u /u\n", {"u": "u"})
        before = len(reg.requests())
        local = build(root, use, "-o", f"type=local,dest={tmp_path / 'out'}")
        during_local = reg.requests()[before:]
        forced = build(root, use, "--pull")
        during_forced = reg.requests()[before + len(during_local) :]

    assert made.returncode == 0, made.stderr.decode()
    assert local.returncode == 0, local.stderr.decode()
    assert during_local == []
    assert (tmp_path / "out" / "l").read_text() == "local"
    assert forced.returncode == 0, forced.stderr.decode()
    assert any(e.path == "/v2/app/shadow/manifests/1" for e in during_forced), during_forced
