"""The files strata's images hold match what BuildKit would produce for the same build.

Each scenario builds a small Dockerfile for real (runc, overlay snapshots, a busybox
base) through `strata.api.build` into the image store, unpacks the image's layers in
order and compares the resulting tree exactly: path, type, permission bits, owner,
content and link target (and, where it matters, the layers' own entries). The expected trees come from BuildKit's sources and
tests (`frontend/dockerfile/dockerfile2llb/convert_copy.go`, `solver/llbsolver/file/
backend.go`, `solver/llbsolver/ops/user_linux.go`, fsutil `copy/copy.go`,
`source/http/source.go`, `executor/stubs.go`; `dockerfile_test.go`,
`dockerfile_add_test.go`, `dockerfile_parents_test.go`, `dockerfile_heredoc_test.go`,
`dockerfile_mount_test.go`), as summarised in docs/buildkit-semantics.md §2, §5, §9.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import io
import os
import shutil
import stat
import subprocess
import tarfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strata.api import BuildRequest, BuildResult, build
from strata.errors import StrataError
from strata.export.outputs import OutputSpec
from strata.export.tarball_import import import_tarball
from strata.image.apply import apply_layer
from strata.store.images import ImageStore
from strata.store.root import StateRoot
from tests.integration.guide_fixtures import BUSYBOX_IMAGE, busybox_tarball

__all__ = ["busybox_tarball"]

BASE = f"FROM {BUSYBOX_IMAGE}\n"

# -- describing trees ------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One path of a tree as an image carries it (times aside)."""

    kind: str  # file, dir, link, fifo, char, block, socket
    mode: int  # permission bits with setuid/setgid/sticky
    uid: int = 0
    gid: int = 0
    data: str | None = None  # a file's text or a symlink's target


def file(data: str, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> Entry:
    return Entry("file", mode, owner[0], owner[1], data)


def directory(mode: int = 0o755, owner: tuple[int, int] = (0, 0)) -> Entry:
    return Entry("dir", mode, owner[0], owner[1])


def symlink(target: str, owner: tuple[int, int] = (0, 0)) -> Entry:
    return Entry("link", 0o777, owner[0], owner[1], target)


_KINDS = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "link",
    stat.S_IFIFO: "fifo",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFSOCK: "socket",
}


def describe(path: Path) -> Entry:
    st = os.lstat(path)
    kind = _KINDS[stat.S_IFMT(st.st_mode)]
    data: str | None = None
    if kind == "file":
        data = path.read_bytes().decode(errors="replace")
    elif kind == "link":
        data = os.readlink(path)
    return Entry(kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, data)


def tree(top: Path, under: str) -> dict[str, Entry]:
    """Every path at and below `under` (absolute, in the exported root `top`)."""
    start = top / under.lstrip("/")
    if not os.path.lexists(start):
        return {}
    out = {under: describe(start)}
    if start.is_dir() and not start.is_symlink():
        for dirpath, dirnames, filenames in os.walk(start):
            for name in sorted(dirnames + filenames):
                full = Path(dirpath) / name
                out[f"{under.rstrip('/')}/{full.relative_to(start)}"] = describe(full)
    return out


def same_inode(top: Path, *paths: str) -> bool:
    inodes = {(os.lstat(top / p.lstrip("/")).st_ino) for p in paths}
    return len(inodes) == 1


# -- building --------------------------------------------------------------------------------


@dataclass
class Built:
    result: BuildResult
    out: Path

    def tree(self, under: str) -> dict[str, Entry]:
        return tree(self.out, under)

    def exists(self, path: str) -> bool:
        return os.path.lexists(self.out / path.lstrip("/"))


@dataclass
class Project:
    """A build context being written, and the state root it is built in."""

    root: StateRoot
    directory: Path
    scratch: Path
    builds: int = field(default=0)

    def write(self, name: str, data: str | bytes = "", mode: int = 0o644) -> Path:
        path = self.directory / name
        self._parents(path)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        path.chmod(mode)
        return path

    def mkdir(self, name: str, mode: int = 0o755) -> Path:
        path = self.directory / name
        self._parents(path)
        path.mkdir(exist_ok=True)
        path.chmod(mode)
        return path

    def symlink(self, name: str, target: str) -> Path:
        path = self.directory / name
        self._parents(path)
        path.symlink_to(target)
        return path

    def _parents(self, path: Path) -> None:
        parent = path.parent
        missing: list[Path] = []
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        for item in reversed(missing):
            item.mkdir()
            item.chmod(0o755)

    def request(self, dockerfile: str, **options: object) -> BuildRequest:
        (self.directory / "Dockerfile").write_text(dockerfile)
        return BuildRequest(context=self.directory, **options)  # type: ignore[arg-type]

    def build(self, dockerfile: str, **options: object) -> Built:
        """Build into the image store and unpack the image's layers, in order, into a
        fresh directory: the tree is what the image holds."""
        self.builds += 1
        out = self.scratch / f"image-{self.builds}"
        out.mkdir()
        request = self.request(dockerfile, tags=(f"compat:{self.builds}",), **options)
        result = build(request, root=self.root)
        images = ImageStore(self.root)
        for layer in images.image(result.manifest_digest).layers:
            with images.content.open(layer.digest) as fh:
                apply_layer(fh, out, mode="tree")
        return Built(result, out)

    def build_local(self, dockerfile: str, dest: Path, **options: object) -> BuildResult:
        """Build with `-o type=local,dest=<dest>`."""
        request = self.request(
            dockerfile, outputs=(OutputSpec(type="local", dest=str(dest)),), **options
        )
        return build(request, root=self.root)

    def build_image(self, dockerfile: str, tag: str = "compat:test", **options: object) -> str:
        """Build into the image store; returns the manifest digest."""
        result = build(self.request(dockerfile, tags=(tag,), **options), root=self.root)
        return result.manifest_digest

    def fails(self, dockerfile: str, **options: object) -> str:
        with pytest.raises(StrataError) as info:
            self.build(dockerfile, **options)
        return info.value.message

    def layers(self, manifest_digest: str) -> list[dict[str, tarfile.TarInfo]]:
        """Each layer of an image as {member name: header}."""
        images = ImageStore(self.root)
        image = images.image(manifest_digest)
        out = []
        for layer in image.layers:
            with images.content.open(layer.digest) as fh:
                data = fh.read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                out.append({m.name.removeprefix("./"): m for m in archive.getmembers()})
        return out


@pytest.fixture
def project(tmp_path: Path, busybox_tarball: Path) -> Iterator[Project]:
    """A fresh state root holding the busybox image, and an empty context directory."""
    root = StateRoot.open(tmp_path / "root")
    try:
        images = ImageStore(root)
        with open(busybox_tarball, "rb") as fh:
            manifest = import_tarball(images, fh, source="busybox", changes=['CMD ["sh"]'])
        images.put(BUSYBOX_IMAGE, manifest)
        context = tmp_path / "context"
        context.mkdir()
        context.chmod(0o755)
        scratch = tmp_path / "scratch"
        scratch.mkdir()
        yield Project(root, context, scratch)
    finally:
        root.close()


# -- COPY destinations (§5.1) ----------------------------------------------------------------


def test_file_to_trailing_slash_lands_in_a_created_directory(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(BASE + "COPY a.txt /dst/\n")
    assert built.tree("/dst") == {"/dst": directory(), "/dst/a.txt": file("a\n")}


def test_file_to_missing_path_without_slash_becomes_that_file(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(BASE + "COPY a.txt /dst/sub/renamed\n")
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/sub": directory(),
        "/dst/sub/renamed": file("a\n"),
    }


def test_file_into_existing_directory_without_slash_keeps_its_name(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(BASE + "RUN mkdir -p /dst/sub\nCOPY a.txt /dst/sub\n")
    assert built.tree("/dst/sub") == {"/dst/sub": directory(), "/dst/sub/a.txt": file("a\n")}


def test_dot_and_relative_destinations_resolve_against_workdir(project: Project) -> None:
    project.write("a.txt", "a\n")
    project.write("b.txt", "b\n")
    built = project.build(
        BASE + "WORKDIR /dst/w\nCOPY a.txt .\nCOPY b.txt ./\nCOPY a.txt rel/\nCOPY b.txt rel/b2\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/w": directory(),
        "/dst/w/a.txt": file("a\n"),
        "/dst/w/b.txt": file("b\n"),
        "/dst/w/rel": directory(),
        "/dst/w/rel/a.txt": file("a\n"),
        "/dst/w/rel/b2": file("b\n"),
    }


def test_empty_destination_from_a_variable_means_the_workdir(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(BASE + "ARG EMPTY\nWORKDIR /dst\nCOPY a.txt $EMPTY\n")
    assert built.tree("/dst") == {"/dst": directory(), "/dst/a.txt": file("a\n")}


def test_directory_source_copies_its_contents_and_merges(project: Project) -> None:
    project.write("tree/x", "x\n")
    project.write("tree/sub/y", "y\n", mode=0o600)
    project.mkdir("tree/empty", mode=0o700)
    built = project.build(BASE + "RUN mkdir -p /dst && echo keep > /dst/keep\nCOPY tree /dst\n")
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/keep": file("keep\n"),
        "/dst/x": file("x\n"),
        "/dst/sub": directory(),
        "/dst/sub/y": file("y\n", 0o600),
        "/dst/empty": directory(0o700),
    }


def test_directory_source_onto_new_path_creates_it_0755(project: Project) -> None:
    project.mkdir("tree", mode=0o700)
    project.write("tree/x", "x\n")
    built = project.build(BASE + "COPY tree /dst/new\n")
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/new": directory(0o755),
        "/dst/new/x": file("x\n"),
    }


def test_existing_nested_directory_takes_the_source_metadata_but_the_top_keeps_its_own(
    project: Project,
) -> None:
    # fsutil copy.go: the destination directory itself keeps owner and mode; directories
    # met inside the copied tree are overwritten with the source's (overwriteTargetMetadata).
    project.write("tree/sub/y", "y\n")
    built = project.build(
        BASE
        + "RUN mkdir -p /dst/sub && chmod 700 /dst /dst/sub && chown 1000:50 /dst /dst/sub\n"
        + "COPY tree /dst/\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(0o700, (1000, 50)),
        "/dst/sub": directory(0o755, (0, 0)),
        "/dst/sub/y": file("y\n"),
    }


def test_multiple_sources_into_a_directory(project: Project) -> None:
    project.write("a.txt", "a\n")
    project.write("b.txt", "b\n")
    project.write("tree/c.txt", "c\n")
    built = project.build(BASE + "COPY a.txt b.txt tree /dst/\n")
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/a.txt": file("a\n"),
        "/dst/b.txt": file("b\n"),
        "/dst/c.txt": file("c\n"),
    }


def test_multiple_sources_onto_a_missing_path_leave_the_last_file(project: Project) -> None:
    # Not validated by BuildKit (the legacy builder required a trailing slash).
    project.write("a.txt", "a\n")
    project.write("b.txt", "b\n")
    built = project.build(BASE + "COPY a.txt b.txt /dst/f\n")
    assert built.tree("/dst") == {"/dst": directory(), "/dst/f": file("b\n")}


def test_directory_onto_an_existing_file_fails(project: Project) -> None:
    project.write("tree/x", "x\n")
    message = project.fails(BASE + "RUN mkdir /dst && touch /dst/f\nCOPY tree /dst/f\n")
    assert "cannot copy to non-directory" in message
    assert "/dst/f" in message


def test_destination_symlink_is_followed_inside_the_root(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(
        BASE + "RUN mkdir /real && ln -s /real /dst && ln -s ../../real /up\n"
        "COPY a.txt /dst/\nCOPY a.txt /up/b.txt\n"
    )
    assert built.tree("/dst") == {"/dst": symlink("/real")}
    assert built.tree("/real") == {
        "/real": directory(),
        "/real/a.txt": file("a\n"),
        "/real/b.txt": file("a\n"),
    }


# -- sources: wildcards, symlinks, hard links, metadata (§5.2, §5.3) ---------------------------


def test_wildcard_matching_nothing_copies_nothing_and_creates_nothing(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(BASE + "COPY nomatch* /dst/\nCOPY a.txt /other/\n")
    assert not built.exists("/dst")
    assert built.tree("/other") == {"/other": directory(), "/other/a.txt": file("a\n")}


def test_wildcard_matches_are_copied_in_lexical_order(project: Project) -> None:
    for name in ("f1", "f2", "f10"):
        project.write(name, f"{name}\n")
    built = project.build(BASE + "COPY f* /dst/last\nCOPY f? /dst/all/\n")
    # f1, f10, f2 each land on /dst/last in turn: f2 is last.
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/last": file("f2\n"),
        "/dst/all": directory(),
        "/dst/all/f1": file("f1\n"),
        "/dst/all/f2": file("f2\n"),
    }


def test_wildcard_matched_directories_are_copied_by_contents(project: Project) -> None:
    project.write("d1/x", "x\n")
    project.write("d2/sub/y", "y\n")
    project.write("dz", "not a dir\n")
    built = project.build(BASE + "COPY d[0-9] /dst/\n")
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/x": file("x\n"),
        "/dst/sub": directory(),
        "/dst/sub/y": file("y\n"),
    }


def test_wildcard_in_a_middle_segment_and_escaped_brackets(project: Project) -> None:
    project.write("pkg/a/setup.cfg", "a\n")
    project.write("pkg/b/setup.cfg", "b\n")
    project.write("pkg/b/other", "o\n")
    project.write("arr[0].txt", "literal\n")
    built = project.build(BASE + "COPY pkg/*/setup.cfg /dst/\nCOPY arr[[]0].txt /lit/\n")
    # both matches are files named setup.cfg: the second replaces the first
    assert built.tree("/dst") == {"/dst": directory(), "/dst/setup.cfg": file("b\n")}
    assert built.tree("/lit") == {"/lit": directory(), "/lit/arr[0].txt": file("literal\n")}


def test_top_level_symlinks_are_followed_and_inner_ones_kept(project: Project) -> None:
    project.write("real.txt", "real\n", mode=0o640)
    project.symlink("link.txt", "real.txt")
    project.write("target/in", "in\n")
    project.symlink("dirlink", "target")
    project.write("tree/file", "f\n")
    project.symlink("tree/rel", "../real.txt")
    project.symlink("tree/abs", "/etc/passwd")
    built = project.build(
        BASE + "COPY link.txt /dst/\nCOPY dirlink /dst/fromdir/\nCOPY tree /dst/tree/\n"
        "COPY l*.txt /dst/wild/\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/link.txt": file("real\n", 0o640),
        "/dst/fromdir": directory(),
        "/dst/fromdir/in": file("in\n"),
        "/dst/tree": directory(),
        "/dst/tree/file": file("f\n"),
        "/dst/tree/rel": symlink("../real.txt"),
        "/dst/tree/abs": symlink("/etc/passwd"),
        "/dst/wild": directory(),
        "/dst/wild/link.txt": file("real\n", 0o640),
    }


def test_hard_links_are_recreated_from_the_context_and_from_a_stage(project: Project) -> None:
    project.write("tree/a", "linked\n")
    os.link(project.directory / "tree/a", project.directory / "tree/b")
    built = project.build(
        "FROM " + BUSYBOX_IMAGE + " AS s\n"
        "RUN mkdir /h && echo x > /h/one && ln /h/one /h/two\n"
        "FROM s\nCOPY tree /dst/\nCOPY --from=s /h /dst/h/\n"
    )
    assert built.tree("/dst/b") == {"/dst/b": file("linked\n")}
    assert same_inode(built.out, "/dst/a", "/dst/b")
    assert same_inode(built.out, "/dst/h/one", "/dst/h/two")


def test_context_files_arrive_owned_by_root_with_their_mode_bits(project: Project) -> None:
    owned = project.write("owned.sh", "#!/bin/sh\n")
    os.chown(owned, 1234, 5678)
    owned.chmod(0o4755)  # after chown, which clears setuid
    project.write("private", "p\n", mode=0o600)
    built = project.build(BASE + "COPY owned.sh private /dst/\n")
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/owned.sh": file("#!/bin/sh\n", 0o4755),
        "/dst/private": file("p\n", 0o600),
    }


def test_fifo_from_a_stage_is_recreated(project: Project) -> None:
    built = project.build(
        "FROM " + BUSYBOX_IMAGE + " AS s\nRUN mkdir /p && mkfifo -m 640 /p/pipe\n"
        "FROM " + BUSYBOX_IMAGE + "\nCOPY --from=s /p /dst/\n"
    )
    assert built.tree("/dst") == {"/dst": directory(), "/dst/pipe": Entry("fifo", 0o640)}


# -- --chown / --chmod (§5.4) ----------------------------------------------------------------


def test_chown_names_come_from_the_destination_stage(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(
        BASE
        + "COPY --chown=app a.txt /dst/user-only\n"
        + "COPY --chown=app:staff a.txt /dst/user-group\n"
        + "COPY --chown=1234 a.txt /dst/numeric-user\n"
        + "COPY --chown=1234:55 a.txt /dst/numeric-both\n"
        + "COPY --chown=app:77 a.txt /dst/name-number\n"
        + "COPY --chown=root:staff a.txt /dst/root-staff\n"
    )
    # /dst is created by the first COPY, so it carries that COPY's --chown (fsutil MkdirAll)
    assert built.tree("/dst") == {
        "/dst": directory(owner=(1000, 1000)),
        "/dst/user-only": file("a\n", owner=(1000, 1000)),
        "/dst/user-group": file("a\n", owner=(1000, 50)),
        "/dst/numeric-user": file("a\n", owner=(1234, 1234)),
        "/dst/numeric-both": file("a\n", owner=(1234, 55)),
        "/dst/name-number": file("a\n", owner=(1000, 77)),
        "/dst/root-staff": file("a\n", owner=(0, 50)),
    }


def test_chown_unknown_names_become_zero_without_an_error(project: Project) -> None:
    # solver/llbsolver/ops/user_linux.go: a name not found leaves the id at 0; an unknown
    # group keeps the gid the user lookup gave.
    project.write("a.txt", "a\n")
    built = project.build(
        BASE
        + "COPY --chown=nosuchuser a.txt /dst/unknown\n"
        + "COPY --chown=nosuchuser:staff a.txt /dst/unknown-staff\n"
        + "COPY --chown=app:nosuchgroup a.txt /dst/app-unknown\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/unknown": file("a\n", owner=(0, 0)),
        "/dst/unknown-staff": file("a\n", owner=(0, 50)),
        "/dst/app-unknown": file("a\n", owner=(1000, 1000)),
    }


def test_chown_reads_the_passwd_of_the_stage_copied_into_not_from(project: Project) -> None:
    built = project.build(
        "FROM "
        + BUSYBOX_IMAGE
        + " AS src\n"
        + "RUN echo 'bob:x:4242:4343::/:/bin/sh' >> /etc/passwd && echo bob > /bob.txt\n"
        + "FROM "
        + BUSYBOX_IMAGE
        + "\n"
        + "COPY --from=src --chown=bob /bob.txt /dst/before\n"
        + "RUN echo 'bob:x:4242:4343::/:/bin/sh' >> /etc/passwd\n"
        + "COPY --from=src --chown=bob /bob.txt /dst/after\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/before": file("bob\n", owner=(0, 0)),
        "/dst/after": file("bob\n", owner=(4242, 4343)),
    }


def test_chown_applies_to_directories_links_and_created_parents(project: Project) -> None:
    project.write("tree/x", "x\n")
    project.symlink("tree/l", "x")
    built = project.build(BASE + "RUN mkdir /dst\nCOPY --chown=app:staff tree /dst/new/deep/\n")
    owner = (1000, 50)
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/new": directory(owner=owner),
        "/dst/new/deep": directory(owner=owner),
        "/dst/new/deep/x": file("x\n", owner=owner),
        "/dst/new/deep/l": symlink("x", owner=owner),
    }


def test_octal_chmod_applies_to_files_directories_and_created_parents(project: Project) -> None:
    project.write("tree/x", "x\n", mode=0o600)
    project.mkdir("tree/sub", mode=0o700)
    project.write("tree/sub/y", "y\n", mode=0o755)
    built = project.build(BASE + "COPY --chmod=0750 tree /dst/new/\n")
    assert built.tree("/dst") == {
        "/dst": directory(0o750),
        "/dst/new": directory(0o750),
        "/dst/new/x": file("x\n", 0o750),
        "/dst/new/sub": directory(0o750),
        "/dst/new/sub/y": file("y\n", 0o750),
    }


def test_symbolic_chmod_is_relative_to_each_source_and_parents_stay_0755(
    project: Project,
) -> None:
    project.write("tree/x", "x\n", mode=0o644)
    project.write("tree/run.sh", "#!/bin/sh\n", mode=0o700)
    project.mkdir("tree/sub", mode=0o750)
    built = project.build(BASE + "COPY --chmod=a+X,o-r tree /dst/new/\n")
    assert built.tree("/dst") == {
        "/dst": directory(0o755),
        "/dst/new": directory(0o755),
        "/dst/new/x": file("x\n", 0o640),
        "/dst/new/run.sh": file("#!/bin/sh\n", 0o711),
        "/dst/new/sub": directory(0o751),
    }


def test_chmod_with_special_bits(project: Project) -> None:
    project.write("tool", "t\n")
    built = project.build(BASE + "COPY --chmod=4755 tool /dst/\nCOPY --chmod=1777 tool /dst/t2\n")
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/tool": file("t\n", 0o4755),
        "/dst/t2": file("t\n", 0o1777),
    }


# -- --from, --link, --parents, --exclude (§5.4) ---------------------------------------------


def test_copy_from_a_stage_keeps_owners_modes_and_links(project: Project) -> None:
    built = project.build(
        "FROM "
        + BUSYBOX_IMAGE
        + " AS build\n"
        + "RUN mkdir -p /out/bin && echo tool > /out/bin/tool && chmod 750 /out/bin/tool"
        + " && chown 1000:50 /out/bin/tool && ln -s bin/tool /out/tool && chown -h 1000 /out/tool\n"
        + "FROM "
        + BUSYBOX_IMAGE
        + "\n"
        + "COPY --from=build /out /dst\n"
        + "COPY --from=0 /out/bin/tool /dst/by-index\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/bin": directory(),
        "/dst/bin/tool": file("tool\n", 0o750, (1000, 50)),
        "/dst/tool": symlink("bin/tool", (1000, 0)),
        "/dst/by-index": file("tool\n", 0o750, (1000, 50)),
    }


def test_copy_from_an_image_keeps_its_owners(project: Project) -> None:
    built = project.build(BASE + f"COPY --from={BUSYBOX_IMAGE} /home /dst\n")
    assert built.tree("/dst") == {"/dst": directory(), "/dst/app": directory(0o755, (1000, 1000))}


def test_link_copy_gives_the_same_files(project: Project) -> None:
    # The --link layer is made on scratch: the parent it creates carries the --chown
    # owner, and as a merged layer its /dst entry replaces the base's (merge op).
    project.write("tree/x", "x\n")
    project.write("a.txt", "a\n")
    built = project.build(
        BASE + "RUN mkdir /dst && echo keep > /dst/keep\n"
        "COPY --link tree /dst/\nCOPY --link --chown=1000:50 a.txt /dst/owned\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(owner=(1000, 50)),
        "/dst/keep": file("keep\n"),
        "/dst/x": file("x\n"),
        "/dst/owned": file("a\n", owner=(1000, 50)),
    }


def test_link_copy_replaces_a_symlink_on_its_path_instead_of_following_it(
    project: Project,
) -> None:
    # The linked layer is made on scratch, where /dst is a plain directory; merged on
    # top it replaces the base's /dst symlink (a layer's directory over a non-directory).
    project.write("a.txt", "a\n")
    built = project.build(
        BASE + "RUN mkdir /real && ln -s /real /dst && echo f > /file && mkdir /was-dir\n"
        "COPY --link a.txt /dst/\nCOPY --link a.txt /file/\nCOPY --link a.txt /was-dir\n"
    )
    assert built.tree("/dst") == {"/dst": directory(), "/dst/a.txt": file("a\n")}
    assert built.tree("/real") == {"/real": directory()}
    assert built.tree("/file") == {"/file": directory(), "/file/a.txt": file("a\n")}
    # a file source onto an existing directory path: on scratch it is just a file
    assert built.tree("/was-dir") == {"/was-dir": file("a\n")}


def test_parents_keeps_source_paths_and_copies_parent_metadata(project: Project) -> None:
    project.mkdir("a", mode=0o750)
    project.write("a/b/c.txt", "c\n")
    project.write("a/d.txt", "d\n")
    project.write("a/b/e.md", "e\n")
    built = project.build(
        BASE + "COPY --parents a/b/c.txt a/d.txt /dst/\nCOPY --parents ./a/./b/*.txt /pivot/\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/a": directory(0o750),
        "/dst/a/b": directory(),
        "/dst/a/b/c.txt": file("c\n"),
        "/dst/a/d.txt": file("d\n"),
    }
    assert built.tree("/pivot") == {
        "/pivot": directory(),
        "/pivot/b": directory(),
        "/pivot/b/c.txt": file("c\n"),
    }


def test_parents_double_star_matches_any_depth(project: Project) -> None:
    project.write("src/x/pkg.json", "1\n")
    project.write("src/x/y/pkg.json", "2\n")
    project.write("src/x/y/other", "3\n")
    built = project.build(BASE + "COPY --parents src/**/pkg.json /dst/\n")
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/src": directory(),
        "/dst/src/x": directory(),
        "/dst/src/x/pkg.json": file("1\n"),
        "/dst/src/x/y": directory(),
        "/dst/src/x/y/pkg.json": file("2\n"),
    }


def test_parents_literal_source_must_exist(project: Project) -> None:
    message = project.fails(BASE + "COPY --parents missing/file /dst/\n")
    assert "not found" in message


def test_exclude_patterns_are_relative_to_each_source(project: Project) -> None:
    project.write("tree/a.txt", "a\n")
    project.write("tree/b.log", "b\n")
    project.write("tree/sub/c.log", "c\n")
    built = project.build(
        BASE + "COPY --exclude=*.log tree /top/\nCOPY --exclude=**/*.log tree /deep/\n"
    )
    assert built.tree("/top") == {
        "/top": directory(),
        "/top/a.txt": file("a\n"),
        "/top/sub": directory(),
        "/top/sub/c.log": file("c\n"),
    }
    assert built.tree("/deep") == {
        "/deep": directory(),
        "/deep/a.txt": file("a\n"),
        "/deep/sub": directory(),
    }


# -- .dockerignore (§11) ---------------------------------------------------------------------


def test_dockerignored_file_is_not_found_for_copy(project: Project) -> None:
    project.write(".dockerignore", "secret.txt\n")
    project.write("secret.txt", "s\n")
    message = project.fails(BASE + "COPY secret.txt /dst/\n")
    assert '"/secret.txt": not found' in message


def test_dockerignore_exclusions_and_reinclusions_shape_a_directory_copy(
    project: Project,
) -> None:
    project.write(".dockerignore", "logs\n!logs/keep.log\n*.md\n")
    project.write("logs/a.log", "a\n")
    project.write("logs/keep.log", "k\n")
    project.write("README.md", "r\n")
    project.write("app.py", "p\n")
    built = project.build(BASE + "COPY . /dst/\n")
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/.dockerignore": file("logs\n!logs/keep.log\n*.md\n"),
        "/dst/Dockerfile": file(BASE + "COPY . /dst/\n"),
        "/dst/app.py": file("p\n"),
        "/dst/logs": directory(),
        "/dst/logs/keep.log": file("k\n"),
    }


# -- ADD (§5.5) ------------------------------------------------------------------------------


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644, **kw: object
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = 1_600_000_000
    for key, value in kw.items():
        setattr(info, key, value)
    if kind == tarfile.REGTYPE:
        info.size = len(data)
        return info, data
    return info, None


ARCHIVE = [
    _member("app", tarfile.DIRTYPE, mode=0o750, uid=1234, gid=5678),
    _member("app/run.sh", data=b"#!/bin/sh\n", mode=0o755, uid=1234, gid=5678),
    _member("app/data.txt", data=b"data\n", mode=0o600),
    _member("app/link", tarfile.SYMTYPE, linkname="run.sh", mode=0o777),
    _member("app/hard", tarfile.LNKTYPE, linkname="app/data.txt"),
]


def test_add_extracts_local_archives_keeping_their_owners(project: Project) -> None:
    raw = _tar(ARCHIVE)
    project.write("plain.tar", raw)
    project.write("packed.tgz", gzip.compress(raw))
    project.write("named-like.txt", raw)  # detection is by content, not by name
    built = project.build(BASE + "ADD plain.tar /x/\nADD packed.tgz /y\nADD named-like.txt /z/\n")
    expected = {
        "app": directory(0o750, (1234, 5678)),
        "app/run.sh": file("#!/bin/sh\n", 0o755, (1234, 5678)),
        # go-archive handleLChmod: a hard-link entry's own mode is applied to the
        # shared inode, so the later header (0644) wins over data.txt's 0600
        "app/data.txt": file("data\n", 0o644),
        "app/link": symlink("run.sh"),
        "app/hard": file("data\n", 0o644),
    }
    for top in ("/x", "/y", "/z"):
        got = built.tree(top)
        assert got.pop(top) == directory()
        assert got == {f"{top}/{k}": v for k, v in expected.items()}
        assert same_inode(built.out, f"{top}/app/data.txt", f"{top}/app/hard")


def test_add_with_chown_sets_archive_owners_and_copies_non_archives(project: Project) -> None:
    project.write("plain.tar", _tar(ARCHIVE[:2]))
    project.write("notes.txt", "not an archive\n")
    project.write("broken.tar.gz", b"\x1f\x8b garbage")
    built = project.build(
        BASE + "ADD --chown=app:staff plain.tar /x/\nADD notes.txt broken.tar.gz /y/\n"
    )
    owner = (1000, 50)
    # unpack.go creates the destination with the --chown owner too
    assert built.tree("/x") == {
        "/x": directory(owner=owner),
        "/x/app": directory(0o750, owner),
        "/x/app/run.sh": file("#!/bin/sh\n", 0o755, owner),
    }
    got = built.tree("/y")
    assert got["/y/notes.txt"] == file("not an archive\n")
    assert got["/y/broken.tar.gz"].kind == "file"


def test_copy_never_extracts_archives(project: Project) -> None:
    raw = _tar(ARCHIVE[:2])
    project.write("plain.tar", raw)
    built = project.build(BASE + "COPY plain.tar /dst/\n")
    entry = built.tree("/dst")["/dst/plain.tar"]
    assert (entry.kind, entry.mode) == ("file", 0o644)
    assert (built.out / "dst/plain.tar").read_bytes() == raw


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves `self.server.files` (path → (body, Last-Modified or None))."""

    def do_GET(self) -> None:
        files: Mapping[str, tuple[bytes, str | None]] = self.server.files  # type: ignore[attr-defined]
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        found = files.get(self.path.split("?")[0])
        if found is None:
            self.send_error(404)
            return
        body, modified = found
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if modified is not None:
            self.send_header("Last-Modified", modified)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class FileServer:
    files: dict[str, tuple[bytes, str | None]]
    url: str
    requests: list[str]


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    """An HTTP server on 127.0.0.1 serving a mutable dict of files."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    files: dict[str, tuple[bytes, str | None]] = {}
    requests: list[str] = []
    server.files = files  # type: ignore[attr-defined]
    server.requests = requests  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FileServer(files, f"http://127.0.0.1:{server.server_address[1]}", requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"
MODIFIED_EPOCH = 1445412480


def test_add_url_is_0600_with_last_modified_time(project: Project, file_server: FileServer) -> None:
    file_server.files["/files/tool.sh"] = (b"echo remote\n", MODIFIED)
    file_server.files["/plain"] = (b"no date\n", None)
    raw = _tar(ARCHIVE[:2])
    file_server.files["/pkg.tar"] = (raw, MODIFIED)
    url = file_server.url
    built = project.build(
        BASE
        + f"ADD {url}/files/tool.sh /dst/\n"
        + f"ADD {url}/plain /dst/renamed\n"
        + f"ADD --chmod=755 {url}/files/tool.sh /dst/exec/\n"
        + f"ADD {url}/pkg.tar /dst/\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/tool.sh": file("echo remote\n", 0o600),
        "/dst/renamed": file("no date\n", 0o600),
        "/dst/exec": directory(),
        "/dst/exec/tool.sh": file("echo remote\n", 0o755),
        "/dst/pkg.tar": Entry("file", 0o600, data=raw.decode(errors="replace")),
    }
    assert os.lstat(built.out / "dst/tool.sh").st_mtime == MODIFIED_EPOCH
    assert os.lstat(built.out / "dst/renamed").st_mtime == 0


def test_add_url_checksum_is_verified(project: Project, file_server: FileServer) -> None:
    body = b"pinned\n"
    file_server.files["/pinned.txt"] = (body, MODIFIED)
    good = "sha256:" + hashlib.sha256(body).hexdigest()
    bad = "sha256:" + "0" * 64
    url = f"{file_server.url}/pinned.txt"
    built = project.build(BASE + f"ADD --checksum={good} {url} /dst/\n")
    assert built.tree("/dst/pinned.txt") == {"/dst/pinned.txt": file("pinned\n", 0o600)}
    message = project.fails(BASE + f"ADD --checksum={bad} {url} /dst/\n")
    assert message.endswith(f"digest mismatch for {url}: {good} (expected: {bad})")


def _git(cwd: Path, *args: str) -> str:
    env = dict(
        os.environ,
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.com",
    )
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return proc.stdout.strip()


def _serve_repo(tmp: Path, server: FileServer) -> str:
    """A small repository published over dumb HTTP; returns the commit of `main`."""
    work = tmp / "repo-work"
    work.mkdir()
    _git(work, "init", "-q", "-b", "main")
    (work / "README").write_text("readme\n")
    (work / "sub").mkdir()
    (work / "sub/tool.sh").write_text("#!/bin/sh\n")
    (work / "sub/tool.sh").chmod(0o755)
    (work / "sub/data").write_text("data\n")
    (work / "sub/data").chmod(0o600)  # git keeps only the x bit
    os.symlink("tool.sh", work / "sub/link")
    _git(work, "add", "-A")
    _git(work, "commit", "-q", "-m", "one")
    bare = tmp / "repo.git"
    _git(tmp, "clone", "-q", "--bare", str(work), str(bare))
    _git(bare, "update-server-info")
    for path in bare.rglob("*"):
        if path.is_file():
            server.files[f"/repo.git/{path.relative_to(bare)}"] = (path.read_bytes(), None)
    return _git(work, "rev-parse", "HEAD")


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_add_git_copies_the_checkout_without_dot_git(
    project: Project, file_server: FileServer, tmp_path: Path
) -> None:
    commit = _serve_repo(tmp_path, file_server)
    url = f"{file_server.url}/repo.git"
    built = project.build(
        BASE
        + f"ADD {url} /all\n"
        + f"ADD {url}#main:sub /sub/\n"
        + f"ADD --checksum={commit[:12]} {url}#main /pinned\n"
    )
    checkout = {
        "README": file("readme\n"),
        "sub": directory(),
        "sub/tool.sh": file("#!/bin/sh\n", 0o755),
        "sub/data": file("data\n"),
        "sub/link": symlink("tool.sh"),
    }
    for top in ("/all", "/pinned"):
        got = built.tree(top)
        assert got.pop(top) == directory()
        assert got == {f"{top}/{k}": v for k, v in checkout.items()}
    assert built.tree("/sub") == {
        "/sub": directory(),
        "/sub/tool.sh": file("#!/bin/sh\n", 0o755),
        "/sub/data": file("data\n"),
        "/sub/link": symlink("tool.sh"),
    }
    message = project.fails(BASE + f"ADD --checksum={'0' * 40} {url}#main /bad\n")
    assert f"expected checksum to match {'0' * 40}, got {commit}" in message


# -- heredocs (§9) ---------------------------------------------------------------------------


def test_copy_heredocs_expand_unless_the_delimiter_is_quoted(project: Project) -> None:
    dockerfile = (
        BASE
        + "ARG NAME=world\n"
        + "COPY <<EOF /dst/expanded\nhello $NAME \\$NAME\nEOF\n"
        + "COPY <<'EOF' /dst/literal\nhello $NAME\nEOF\n"
        + "COPY <<A <<B /dst/dir/\nfirst\nA\nsecond\nB\n"
        + "COPY --chmod=0755 <<-EOF /dst/tabs\n\t#!/bin/sh\n\tEOF\n"
    )
    built = project.build(dockerfile)
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/expanded": file("hello world $NAME\n"),
        "/dst/literal": file("hello $NAME\n"),
        "/dst/dir": directory(),
        "/dst/dir/A": file("first\n"),
        "/dst/dir/B": file("second\n"),
        "/dst/tabs": file("#!/bin/sh\n", 0o755),
    }


def test_run_heredocs_run_scripts_and_shebang_files(project: Project) -> None:
    dockerfile = (
        BASE
        + "ENV WHO=env\n"
        + 'RUN <<EOF\nmkdir /dst\necho "one $WHO" > /dst/one\necho two > /dst/two\nEOF\n'
        + 'RUN <<EOF\n#!/bin/sh -e\necho "$0" > /dst/argv0\nEOF\n'
        + "RUN <<A cat > /dst/cat-a && <<B cat > /dst/cat-b\nfrom a $WHO\nA\nfrom b\nB\n"
    )
    built = project.build(dockerfile)
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/one": file("one env\n"),
        "/dst/two": file("two\n"),
        "/dst/argv0": file("/dev/pipes/EOF\n"),
        "/dst/cat-a": file("from a env\n"),
        "/dst/cat-b": file("from b\n"),
    }
    assert not built.exists("/dev/pipes")


# -- WORKDIR, RUN mounts, layers (§2.4, §6) ---------------------------------------------------


def test_workdir_creates_missing_directories_owned_by_user(project: Project) -> None:
    built = project.build(
        BASE
        + "USER app\nWORKDIR /w/x\n"
        + "USER 4321:4322\nWORKDIR /n/y\n"
        + "WORKDIR /tmp\nUSER root\nWORKDIR /w/x/z\n"
    )
    assert built.tree("/w") == {
        "/w": directory(owner=(1000, 1000)),
        "/w/x": directory(owner=(1000, 1000)),
        "/w/x/z": directory(),
    }
    assert built.tree("/n") == {
        "/n": directory(owner=(4321, 4322)),
        "/n/y": directory(owner=(4321, 4322)),
    }
    assert built.tree("/tmp") == {"/tmp": directory(0o1777)}


def test_run_mount_targets_that_did_not_exist_leave_nothing(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(
        BASE
        + "RUN --mount=type=bind,source=a.txt,target=/stub/deep/file"
        + " --mount=type=cache,target=/var/cache/thing"
        + " --mount=type=tmpfs,target=/scratch/t"
        + " --mount=type=bind,target=/ctx"
        + " cat /stub/deep/file /ctx/a.txt > /result && echo c > /var/cache/thing/c"
        + " && echo t > /scratch/t/t\n"
    )
    assert built.tree("/result") == {"/result": file("a\na\n")}
    for gone in ("/stub", "/var/cache", "/scratch", "/ctx"):
        assert not built.exists(gone), gone
    assert built.tree("/var") == {"/var": directory()}


def test_run_mount_onto_an_existing_path_leaves_it_as_it_was(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(
        BASE
        + "RUN mkdir /data && echo original > /data/f\n"
        + "RUN --mount=type=bind,target=/data,rw echo changed > /data/f && echo new > /data/g\n"
        + "RUN --mount=type=tmpfs,target=/data ls /data > /listing\n"
    )
    assert built.tree("/data") == {"/data": directory(), "/data/f": file("original\n")}
    assert built.tree("/listing") == {"/listing": file("")}


def test_rw_bind_mount_writes_are_discarded(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(
        BASE
        + "RUN --mount=type=bind,target=/ctx,rw echo changed > /ctx/a.txt && echo x > /ctx/new"
        + " && cat /ctx/a.txt > /seen\n"
        + "RUN --mount=type=bind,target=/ctx cat /ctx/a.txt > /after\n"
    )
    assert built.tree("/seen") == {"/seen": file("changed\n")}
    assert built.tree("/after") == {"/after": file("a\n")}
    assert not built.exists("/ctx")
    assert (project.directory / "a.txt").read_text() == "a\n"
    assert not (project.directory / "new").exists()


def test_cache_mount_contents_never_reach_a_layer(project: Project) -> None:
    dockerfile = (
        BASE
        + "RUN --mount=type=cache,target=/root/.cache echo kept > /root/.cache/f\n"
        + "RUN --mount=type=cache,target=/root/.cache cat /root/.cache/f > /seen\n"
    )
    manifest = project.build_image(dockerfile)
    for layer in project.layers(manifest)[1:]:
        assert not any(name.startswith("root/.cache") for name in layer), sorted(layer)
    built = project.build(dockerfile)
    assert built.tree("/root") == {"/root": directory(0o755)}
    assert built.tree("/seen") == {"/seen": file("kept\n")}


def test_deleting_a_base_file_writes_a_whiteout(project: Project) -> None:
    dockerfile = BASE + "RUN rm /etc/group && rm -r /home/app && mkdir /home/app2\n"
    manifest = project.build_image(dockerfile)
    layers = project.layers(manifest)
    assert "etc/group" in layers[0]
    top = layers[-1]
    assert "etc/.wh.group" in top
    assert "home/.wh.app" in top
    assert top["home/app2"].isdir()
    built = project.build(dockerfile)
    assert not built.exists("/etc/group")
    assert built.tree("/home") == {"/home": directory(), "/home/app2": directory()}


def test_replacing_a_base_directory_is_opaque(project: Project) -> None:
    dockerfile = BASE + "RUN rm -r /home && mkdir /home && echo new > /home/only\n"
    manifest = project.build_image(dockerfile)
    top = project.layers(manifest)[-1]
    # an opaque marker or a whiteout per lower entry: either hides /home/app
    assert "home/.wh..wh..opq" in top or "home/.wh.app" in top
    built = project.build(dockerfile)
    assert built.tree("/home") == {"/home": directory(), "/home/only": file("new\n")}


# -- more destination and source corner cases -------------------------------------------------


def test_file_onto_a_symlink_destination_writes_through_the_link(project: Project) -> None:
    # fsutil Copy resolves the whole destination path (fs.RootPath), its last component
    # too: the link stays and its target, inside the root, receives the file.
    project.write("a.txt", "new\n")
    built = project.build(
        BASE
        + "RUN mkdir -p /dst /data && echo old > /data/f && ln -s /data/f /dst/f"
        + " && ln -s /data/nothing-yet /dst/dangling && ln -s /data /dst/dirlink\n"
        + "COPY a.txt /dst/f\nCOPY a.txt /dst/dangling\nCOPY a.txt /dst/dirlink\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/f": symlink("/data/f"),
        "/dst/dangling": symlink("/data/nothing-yet"),
        "/dst/dirlink": symlink("/data"),
    }
    assert built.tree("/data") == {
        "/data": directory(),
        "/data/f": file("new\n"),
        "/data/nothing-yet": file("new\n"),
        "/data/a.txt": file("new\n"),
    }


def test_directory_copy_onto_a_symlink_inside_the_tree_fails(project: Project) -> None:
    project.write("tree/sub/x", "x\n")
    message = project.fails(
        BASE + "RUN mkdir -p /dst /elsewhere && ln -s /elsewhere /dst/sub\nCOPY tree /dst/\n"
    )
    assert "cannot copy to non-directory" in message and "/dst/sub" in message


def test_files_and_links_inside_the_tree_replace_what_was_there(project: Project) -> None:
    project.write("tree/was-link", "now a file\n", mode=0o600)
    project.symlink("tree/was-file", "was-link")
    built = project.build(
        BASE
        + "RUN mkdir /dst && ln -s /etc/passwd /dst/was-link && echo old > /dst/was-file\n"
        + "COPY tree /dst/\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/was-link": file("now a file\n", 0o600),
        "/dst/was-file": symlink("was-link"),
    }
    assert built.tree("/etc/passwd")["/etc/passwd"].data.startswith("root:x:0:0")  # type: ignore[union-attr]


def test_replacing_a_base_file_takes_the_new_mode(project: Project) -> None:
    project.write("passwd", "root:x:0:0:root:/root:/bin/sh\n", mode=0o600)
    built = project.build(BASE + "COPY passwd /etc/passwd\n")
    assert built.tree("/etc/passwd") == {
        "/etc/passwd": file("root:x:0:0:root:/root:/bin/sh\n", 0o600)
    }


def test_nested_existing_directories_take_chmod_but_the_destination_keeps_its_mode(
    project: Project,
) -> None:
    project.write("tree/sub/y", "y\n")
    built = project.build(
        BASE + "RUN mkdir -p /dst/sub && chmod 700 /dst/sub && chmod 711 /dst\n"
        "COPY --chmod=0750 tree /dst/\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(0o711),
        "/dst/sub": directory(0o750),
        "/dst/sub/y": file("y\n", 0o750),
    }


def test_hard_links_are_not_shared_across_separate_sources(project: Project) -> None:
    # Each source (and each wildcard match) is copied by a copier of its own, so only
    # links met within one source are recreated.
    project.write("tree/a", "linked\n")
    os.link(project.directory / "tree/a", project.directory / "tree/b")
    built = project.build(BASE + "COPY tree/a tree/b /sep/\nCOPY tree/* /wild/\nCOPY tree /one/\n")
    assert not same_inode(built.out, "/sep/a", "/sep/b")
    assert not same_inode(built.out, "/wild/a", "/wild/b")
    assert same_inode(built.out, "/one/a", "/one/b")


def test_sources_cannot_leave_the_context_or_the_stage_root(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(
        "FROM "
        + BUSYBOX_IMAGE
        + " AS s\n"
        + "RUN mkdir /real && echo inside > /real/f && ln -s / /real/root-link"
        + " && ln -s /real /lnk\n"
        + "FROM "
        + BUSYBOX_IMAGE
        + "\n"
        + "COPY ../../a.txt /dst/\n"
        + "COPY --from=s /lnk/f /dst/through-link\n"
        + "COPY --from=s /real/root-link/real/f /dst/through-root-link\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/a.txt": file("a\n"),
        "/dst/through-link": file("inside\n"),
        "/dst/through-root-link": file("inside\n"),
    }


def test_variables_expand_in_paths_chown_and_chmod(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(
        BASE
        + "ARG WHO=app\nARG MODE=0600\nENV DEST=/dst\n"
        + "COPY --chown=$WHO:staff --chmod=$MODE a.txt ${DEST}/${WHO}.txt\n"
    )
    # an octal --chmod is also the mode of the parents the copy creates (fsutil Copy)
    assert built.tree("/dst") == {
        "/dst": directory(0o600, (1000, 50)),
        "/dst/app.txt": file("a\n", 0o600, (1000, 50)),
    }


def test_json_form_sources_with_spaces_and_odd_names(project: Project) -> None:
    project.write("my file.txt", "spaced\n")
    project.write("-dash", "dash\n")
    project.write("ünï.txt", "unicode\n")
    built = project.build(BASE + 'COPY ["my file.txt", "-dash", "ünï.txt", "/dst dir/"]\n')
    assert built.tree("/dst dir") == {
        "/dst dir": directory(),
        "/dst dir/my file.txt": file("spaced\n"),
        "/dst dir/-dash": file("dash\n"),
        "/dst dir/ünï.txt": file("unicode\n"),
    }


def test_copy_into_the_root_keeps_the_root_itself(project: Project) -> None:
    project.write("tree/etc/app.conf", "conf\n")
    project.write("tree/top", "top\n")
    built = project.build(BASE + "COPY tree /\n")
    assert built.tree("/top") == {"/top": file("top\n")}
    assert built.tree("/etc/app.conf") == {"/etc/app.conf": file("conf\n")}
    assert stat.S_IMODE(os.lstat(built.out).st_mode) == 0o755


def test_copy_heredoc_into_a_directory_is_named_after_the_delimiter(project: Project) -> None:
    built = project.build(BASE + "COPY <<CONFIG /etc/app/\nkey=1\nCONFIG\n")
    assert built.tree("/etc/app") == {
        "/etc/app": directory(),
        "/etc/app/CONFIG": file("key=1\n"),
    }


def test_copy_layer_holds_only_the_new_files_and_their_parents(project: Project) -> None:
    project.write("a.txt", "a\n")
    manifest = project.build_image(BASE + "COPY a.txt /etc/app/\nRUN touch /etc/app/b\n")
    layers = project.layers(manifest)
    assert sorted(layers[1]) == ["etc", "etc/app", "etc/app/a.txt"]
    # The overlay differ skips unchanged parents, but containerd's ChangeWriter writes
    # every parent directory of an entry (includeParents), so /etc is in the layer.
    assert sorted(layers[2]) == ["etc", "etc/app", "etc/app/b"]


def test_run_leaves_no_hosts_resolv_conf_or_pipes_behind(project: Project) -> None:
    dockerfile = (
        BASE
        + "RUN cat /etc/hosts /etc/resolv.conf > /dev/null && echo ran > /ran\n"
        + "RUN <<EOF\n#!/bin/sh\necho piped > /piped\nEOF\n"
    )
    manifest = project.build_image(dockerfile)
    for layer in project.layers(manifest)[1:]:
        assert sorted(layer) in (["ran"], ["piped"]), sorted(layer)


def test_run_creates_files_with_umask_0022_owned_by_the_user(project: Project) -> None:
    built = project.build(BASE + "USER app\nRUN touch /tmp/f && mkdir /tmp/d && ln -s f /tmp/l\n")
    assert built.tree("/tmp") == {
        "/tmp": directory(0o1777),
        "/tmp/f": file("", 0o644, (1000, 1000)),
        "/tmp/d": directory(0o755, (1000, 1000)),
        "/tmp/l": symlink("f", (1000, 1000)),
    }


# -- -o type=local ---------------------------------------------------------------------------


def test_local_export_is_owned_by_the_caller_and_merged_into_the_destination(
    project: Project, tmp_path: Path
) -> None:
    # session/filesync/diffcopy.go syncTargetDiffCopy: the directory is made 0700, files
    # are received as the client's uid/gid, and existing files are merged with.
    dockerfile = (
        "FROM "
        + BUSYBOX_IMAGE
        + " AS build\n"
        + "RUN mkdir /out && echo x > /out/tool && chown 1000:50 /out/tool"
        + " && chmod 4750 /out/tool && ln -s tool /out/link && mkdir -m 2770 /out/d\n"
        + "FROM scratch\nCOPY --from=build /out /\n"
    )
    fresh = tmp_path / "new" / "out"
    project.build_local(dockerfile, fresh)
    me = (os.getuid(), os.getgid())
    assert tree(fresh, "/") == {
        "/": directory(0o700, me),
        "/tool": file("x\n", 0o4750, me),
        "/link": symlink("tool", me),
        "/d": directory(0o2770, me),
    }
    existing = tmp_path / "existing"
    existing.mkdir(mode=0o751)
    (existing / "keep").write_text("mine\n")
    project.build_local(dockerfile, existing)
    got = tree(existing, "/")
    assert got["/"].mode == 0o751
    assert sorted(got) == ["/", "/d", "/keep", "/link", "/tool"]


# -- more ADD and RUN --mount shapes ----------------------------------------------------------


def test_glob_characters_in_a_name_make_it_a_pattern(project: Project) -> None:
    # `[0]` is a character class: it matches `arr0.txt`, not the file named `arr[0].txt`,
    # and a pattern matching nothing copies nothing.
    project.write("arr[0].txt", "literal\n")
    built = project.build(BASE + "COPY arr[0].txt /x/\n")
    assert not built.exists("/x")
    project.write("arr0.txt", "zero\n")
    built = project.build(BASE + "COPY arr[0].txt /x/\n")
    assert built.tree("/x") == {"/x": directory(), "/x/arr0.txt": file("zero\n")}


def test_add_unpack_flag_overrides_archive_detection(
    project: Project, file_server: FileServer
) -> None:
    raw = _tar(ARCHIVE[:2])
    project.write("plain.tar", raw)
    file_server.files["/remote.tar"] = (raw, MODIFIED)
    built = project.build(
        BASE
        + "ADD --unpack=false plain.tar /kept/\n"
        + f"ADD --unpack=true {file_server.url}/remote.tar /unpacked/\n"
    )
    assert built.tree("/kept")["/kept/plain.tar"].kind == "file"
    assert built.tree("/unpacked") == {
        "/unpacked": directory(),
        "/unpacked/app": directory(0o750, (1234, 5678)),
        "/unpacked/app/run.sh": file("#!/bin/sh\n", 0o755, (1234, 5678)),
    }


def test_add_url_file_names_come_from_the_last_path_segment(
    project: Project, file_server: FileServer
) -> None:
    file_server.files["/dir/"] = (b"listing\n", None)
    file_server.files["/tool.sh"] = (b"t\n", None)
    file_server.files["/"] = (b"index\n", None)
    url = file_server.url
    built = project.build(
        BASE + f"ADD {url}/dir/ /dst/\nADD {url}/tool.sh?version=2 /dst/\nADD {url}/ /dst/\n"
    )
    assert built.tree("/dst") == {
        "/dst": directory(),
        "/dst/dir": file("listing\n", 0o600),
        "/dst/tool.sh": file("t\n", 0o600),
        "/dst/__unnamed__": file("index\n", 0o600),
    }


def test_bind_mounts_from_images_and_stages_are_read_only_by_default(project: Project) -> None:
    built = project.build(
        "FROM " + BUSYBOX_IMAGE + " AS s\nRUN mkdir /out && echo staged > /out/f\n"
        "FROM " + BUSYBOX_IMAGE + "\n"
        f"RUN --mount=type=bind,from={BUSYBOX_IMAGE},source=/etc,target=/img-etc"
        " --mount=type=bind,from=s,source=/out,target=/staged"
        " cat /img-etc/group /staged/f > /seen"
        " && (touch /staged/new 2>/dev/null && echo writable || echo read-only) > /ro\n"
    )
    seen = built.tree("/seen")["/seen"].data or ""
    assert seen.startswith("root:x:0:") and seen.endswith("staged\n")
    assert built.tree("/ro") == {"/ro": file("read-only\n")}
    assert not built.exists("/img-etc") and not built.exists("/staged")


def test_cache_mount_permissions_and_seed(project: Project) -> None:
    dockerfile = (
        "FROM " + BUSYBOX_IMAGE + " AS seed\nRUN mkdir /s && echo seeded > /s/f\n"
        "FROM " + BUSYBOX_IMAGE + "\n"
        "RUN --mount=type=cache,target=/c,uid=1000,gid=50,mode=0700"
        " stat -c '%u %g %a' /c > /perm\n"
        "RUN --mount=type=cache,target=/p,from=seed,source=/s"
        " cat /p/f > /seeded && echo more >> /p/f\n"
    )
    built = project.build(dockerfile)
    assert built.tree("/perm") == {"/perm": file("1000 50 700\n")}
    assert built.tree("/seeded") == {"/seeded": file("seeded\n")}
    assert not built.exists("/c") and not built.exists("/p")


def test_secret_files_are_mounted_0400_and_never_kept(project: Project) -> None:
    dockerfile = (
        BASE
        + "RUN --mount=type=secret,id=token stat -c '%a %u %g' /run/secrets/token > /default"
        + " && cat /run/secrets/token > /value\n"
        + "RUN --mount=type=secret,id=token,target=/etc/tok,uid=1000,mode=0440"
        + " stat -c '%a %u %g' /etc/tok > /custom\n"
        + 'RUN --mount=type=secret,id=token,env=TOKEN echo "$TOKEN" > /from-env\n'
    )
    built = project.build(dockerfile, secrets={"token": b"s3cret"})
    assert built.tree("/default") == {"/default": file("400 0 0\n")}
    assert built.tree("/value") == {"/value": file("s3cret")}
    assert built.tree("/custom") == {"/custom": file("440 1000 0\n")}
    assert built.tree("/from-env") == {"/from-env": file("s3cret\n")}
    assert not built.exists("/run") and not built.exists("/etc/tok")


def test_tmpfs_mount_size_and_emptiness(project: Project) -> None:
    built = project.build(
        BASE
        + "RUN --mount=type=tmpfs,target=/t,size=1m"
        + " df -k /t | tail -1 | awk '{print $2}' > /size && ls -A /t > /listing\n"
    )
    assert built.tree("/size") == {"/size": file("1024\n")}
    assert built.tree("/listing") == {"/listing": file("")}


def test_context_symlinks_resolve_inside_the_context(project: Project) -> None:
    # The context is a tree of its own: an absolute link means a path in the context,
    # and nothing resolves to the host's files.
    project.write("a.txt", "a\n")
    project.symlink("abs-in", "/a.txt")
    project.symlink("abs-out", "/etc/hostname")
    project.symlink("rel-out", "../../../../../../../../etc/hostname")
    project.write("tree/x", "x\n")
    project.symlink("tree/inner", "/etc/hostname")
    built = project.build(BASE + "COPY abs-in /x/\nCOPY tree /t/\n")
    assert built.tree("/x") == {"/x": directory(), "/x/abs-in": file("a\n")}
    assert built.tree("/t") == {
        "/t": directory(),
        "/t/x": file("x\n"),
        "/t/inner": symlink("/etc/hostname"),
    }
    for name in ("abs-out", "rel-out"):
        assert f'"/{name}": not found' in project.fails(BASE + f"COPY {name} /y/\n")


def test_archive_root_entry_is_skipped_and_implied_parents_are_root_0755(
    project: Project,
) -> None:
    # go-archive Unpack: "." is skipped, a leading "/" is dropped, and missing parents
    # are made 0755 for the root ids even when --chown gives the entries an owner.
    raw = _tar(
        [
            _member("./", tarfile.DIRTYPE, mode=0o700, uid=5, gid=5),
            _member("./a/b/c", data=b"c\n", mode=0o640, uid=7, gid=7),
            _member("/abs", data=b"abs\n"),
        ]
    )
    project.write("t.tar", raw)
    built = project.build(BASE + "ADD t.tar /x/\nADD --chown=1000:50 t.tar /y/\n")
    assert built.tree("/x") == {
        "/x": directory(),
        "/x/a": directory(),
        "/x/a/b": directory(),
        "/x/a/b/c": file("c\n", 0o640, (7, 7)),
        "/x/abs": file("abs\n"),
    }
    owner = (1000, 50)
    assert built.tree("/y") == {
        "/y": directory(owner=owner),
        "/y/a": directory(),
        "/y/a/b": directory(),
        "/y/a/b/c": file("c\n", 0o640, owner),
        "/y/abs": file("abs\n", owner=owner),
    }


def test_mount_stubs_are_removed_only_while_empty(project: Project) -> None:
    project.write("a.txt", "a\n")
    built = project.build(
        BASE
        + "RUN --mount=type=bind,source=a.txt,target=/newdir/file"
        + " --mount=type=cache,target=/var/cache/apt"
        + " echo x > /newdir/other && echo y > /var/cache/other && mkdir -p /m/n\n"
        + "RUN --mount=type=tmpfs,target=/m/n/o/p true\n"
    )
    assert built.tree("/newdir") == {"/newdir": directory(), "/newdir/other": file("x\n")}
    assert built.tree("/var") == {
        "/var": directory(),
        "/var/cache": directory(),
        "/var/cache/other": file("y\n"),
    }
    assert built.tree("/m") == {"/m": directory(), "/m/n": directory()}
