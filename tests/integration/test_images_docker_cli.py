"""The docker commands a builder user reaches for, on images strata built: `history`,
`image prune`, docker's spellings (`image ls`, `buildx du`, `system df`, ...), and
`--format`/`--filter` on the listings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import strata, write_project

DOCKERFILE = "FROM scratch\nCOPY a.txt /a\nLABEL team=build\nCOPY b.txt /b\n"


def _out(root: Path, *args: str) -> str:
    done = strata(root, *args)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


def _fail(root: Path, *args: str) -> str:
    done = strata(root, *args)
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err.strip()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def image(root: Path, tmp_path: Path) -> str:
    """`demo:1`, built from scratch (three history entries, two layers)."""
    project = write_project(tmp_path / "p", DOCKERFILE, {"a.txt": "a" * 3000, "b.txt": "b" * 10})
    return _out(root, "build", "-q", "-t", "demo:1", str(project)).strip()


def test_history_has_dockers_columns_newest_first(root: Path, image: str) -> None:
    lines = _out(root, "history", "demo:1").splitlines()
    assert lines[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    rows = lines[1:]
    assert len(rows) == 3
    assert rows[0].startswith(image.removeprefix("sha256:")[:12] + "   ")
    assert rows[1].startswith("<missing>") and rows[2].startswith("<missing>")
    assert "COPY b.txt /b" in rows[0] and "LABEL team=build" in rows[1]
    assert " 0B " in rows[1]


def test_history_raw_no_trunc_quiet_and_format(root: Path, image: str) -> None:
    raw = _out(root, "history", "--no-trunc", "-H=false", "demo:1").splitlines()
    assert raw[1].startswith(image + " ")
    sizes = [line.split()[-2] for line in raw[1:]]
    assert sizes[1] == "0" and all(s.isdigit() for s in sizes)
    assert _out(root, "history", "-q", "demo:1").split() == [
        image.removeprefix("sha256:")[:12],
        "<missing>",
        "<missing>",
    ]
    created_by = _out(root, "history", "--format", "{{.CreatedBy}}", "demo:1").splitlines()
    assert created_by[1] == "LABEL team=build"
    documents = [
        json.loads(line)
        for line in _out(root, "history", "--format", "json", "demo:1").splitlines()
    ]
    assert set(documents[0]) == {"ID", "CreatedSince", "CreatedAt", "CreatedBy", "Size", "Comment"}


def test_history_of_a_missing_image_is_one_error_line(root: Path, image: str) -> None:
    assert _fail(root, "history", "nosuch:1") == "ERROR: No such image: nosuch:1"


def test_image_prune_removes_dangling_images_then_all_with_a(
    root: Path, image: str, tmp_path: Path
) -> None:
    # The same tag on a new image leaves the old one dangling.
    project = write_project(tmp_path / "q", "FROM scratch\nCOPY c.txt /c\n", {"c.txt": "c"})
    _out(root, "build", "-q", "-t", "demo:1", str(project))
    assert _out(root, "images", "--filter", "dangling=true", "-q", "--no-trunc").split() == [image]

    # Created a moment ago: `until=1h` keeps it.
    kept = _out(root, "image", "prune", "-f", "--filter", "until=1h")
    assert kept == "Total reclaimed space: 0B\n"

    pruned = _out(root, "image", "prune", "-f")
    assert pruned.startswith("Deleted Images:\n")
    assert f"deleted: {image}\n" in pruned
    assert pruned.splitlines()[-1].startswith("Total reclaimed space: ")
    assert pruned.splitlines()[-1] != "Total reclaimed space: 0B"
    assert _out(root, "images", "-q", "--filter", "dangling=true") == ""
    assert len(_out(root, "images", "-q").split()) == 1

    everything = _out(root, "image", "prune", "-a", "-f")
    assert "untagged: demo:1\n" in everything
    assert _out(root, "images", "-q") == ""


def test_image_prune_asks_first(root: Path, image: str) -> None:
    done = strata(root, "image", "prune", "-a", stdin=b"n\n")
    assert done.returncode == 0
    assert done.stdout.decode().startswith("WARNING! This will remove all images without")
    assert len(_out(root, "images", "-q").split()) == 1


def test_docker_spellings_run_the_same_commands(root: Path, image: str) -> None:
    shown = "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}"
    assert _out(root, "image", "ls", "--format", shown) == _out(root, "images", "--format", shown)
    assert _out(root, "image", "ls").splitlines()[0] == _out(root, "images").splitlines()[0]
    assert _out(root, "image", "history", "-q", "demo:1") == _out(root, "history", "-q", "demo:1")
    assert _out(root, "buildx", "du").splitlines()[0] == _out(root, "du").splitlines()[0]
    assert _out(root, "system", "df").splitlines()[-1] == _out(root, "du").splitlines()[-1]
    _out(root, "image", "tag", "demo:1", "other:2")
    assert json.loads(_out(root, "image", "inspect", "other:2"))[0]["Id"] == image
    assert _out(root, "image", "rm", "other:2") == "Untagged: other:2\n"
    assert _out(root, "builder", "prune", "-f").splitlines()[-1].startswith("Total:")


def test_images_filters_digests_and_format(root: Path, image: str) -> None:
    short = image.removeprefix("sha256:")[:12]
    assert _out(root, "images", "-q", "--filter", "reference=dem*").split() == [short]
    assert _out(root, "images", "-q", "--filter", "reference=demo:2") == ""
    assert _out(root, "images", "-q", "--filter", "label=team=build").split() == [short]
    assert _out(root, "images", "-q", "--filter", "label=team=other") == ""
    assert _out(root, "images", "-q", "--filter", "before=demo:1") == ""
    assert _out(root, "images", "-q", "--filter", "since=demo:1") == ""
    assert _out(root, "images", "-q", "-a") == _out(root, "images", "-q")
    digests = _out(root, "images", "--digests").splitlines()
    assert digests[0].split()[:4] == ["REPOSITORY", "TAG", "DIGEST", "IMAGE"]
    assert digests[1].split()[2].startswith("sha256:")
    assert (
        _out(root, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}") == f"demo:1 {short}\n"
    )
    document = json.loads(_out(root, "images", "--format", "json"))
    assert (document["Repository"], document["ID"]) == ("demo", short)
    table = _out(root, "images", "--format", "table {{.Repository}}\\t{{.Size}}").splitlines()
    assert table[0].split() == ["REPOSITORY", "SIZE"]
    assert _fail(root, "images", "--filter", "colour=red") == "ERROR: invalid filter 'colour'"


def test_inspect_format(root: Path, image: str) -> None:
    assert _out(root, "inspect", "-f", "{{.Id}}", "demo:1") == image + "\n"
    labels = _out(root, "image", "inspect", "--format", "{{json .Config.Labels}}", "demo:1")
    assert json.loads(labels) == {"team": "build"}
    assert json.loads(_out(root, "inspect", "--format", "json", "demo:1"))[0]["Id"] == image


def test_du_format(root: Path, image: str) -> None:
    lines = _out(root, "du", "--format", "json").splitlines()
    records = [json.loads(line) for line in lines]
    assert records and all({"ID", "Size", "Type", "LastUsed"} <= set(r) for r in records)
    ids = _out(root, "du", "--format", "{{.ID}}").split()
    assert ids == [r["ID"] for r in records]
