"""A small Python base image made from Debian packages, for the examples and tests.

Docker Hub is out of reach on the machines strata is tested on, so the guide's
`FROM python:3.11` needs an image made here (`make demo` pushes it to a local registry
that stands in for Docker Hub; tests name it in their own state roots): the Debian packages of Python 3.11 (and the pip wheel Debian ships),
unpacked with `dpkg-deb -x`, plus busybox for `/bin/sh` and the core utilities. The
packages are downloaded once into a cache directory with `apt-get download`; the rootfs
tarball is kept there too, so later calls only import it (`strata import`'s code path).

    python -m strata.devtools.pyimage --cache .cache/strata-example [--root DIR]

Without --root the image goes where `strata` itself looks: `$STRATA_ROOT`, else the
default state root (how `make demo` runs it).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from strata.export.tarball_import import import_tarball
from strata.store.images import ImageStore
from strata.store.root import StateRoot

IMAGE_NAME = "python:3.11"
BUSYBOX = Path("/bin/busybox")
PACKAGES = (
    "libc6",
    "libgcc-s1",
    "zlib1g",
    "libexpat1",
    "libssl3",
    "libffi8",
    "libbz2-1.0",
    "liblzma5",
    "libuuid1",
    "libcrypt1",
    "libsqlite3-0",
    "libpython3.11-minimal",
    "python3.11-minimal",
    "libpython3.11-stdlib",
    "python3-pip-whl",
    "python3-setuptools-whl",
    "libtinfo6",
    "libncursesw6",
    "libreadline8",
    "libnsl2",
    "libtirpc3",
    "libdb5.3",
    "libgssapi-krb5-2",
    "libkrb5-3",
    "libk5crypto3",
    "libkrb5support0",
    "libcom-err2",
    "libkeyutils1",
)
PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
GROUP = "root:x:0:\nnogroup:x:65534:\n"
PIP_WRAPPER = '#!/bin/sh\nexec python3 -m pip "$@"\n'
SITE_PACKAGES = "usr/lib/python3/dist-packages"
ENV = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    "ENV PYTHON_VERSION=3.11",
    'CMD ["python3"]',
)


class ImageBuildError(Exception):
    """The base image could not be made (no network for apt, no busybox...)."""


def download_packages(debs: Path) -> list[Path]:
    """The .deb files of PACKAGES in `debs`, downloading the missing ones once."""
    debs.mkdir(parents=True, exist_ok=True)

    def missing() -> list[str]:
        return [p for p in PACKAGES if not glob.glob(str(debs / f"{_escape(p)}_*.deb"))]

    wanted = missing()
    if wanted:
        result = _apt_download(debs, wanted)
        if result.returncode != 0:
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
            result = _apt_download(debs, missing())
        if result.returncode != 0 or missing():
            raise ImageBuildError(
                f"apt-get download failed for {' '.join(missing())}: {result.stderr.strip()}"
            )
    return sorted(debs.glob("*.deb"))


def _escape(package: str) -> str:
    return package.replace("+", "[+]")


def _apt_download(debs: Path, packages: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["apt-get", "download", *packages], cwd=debs, capture_output=True, text=True
    )


def make_rootfs(debs: list[Path], dest: Path) -> None:
    """Unpack the packages into `dest` and add busybox, users and a `pip` command."""
    for deb in debs:
        subprocess.run(["dpkg-deb", "-x", str(deb), str(dest)], check=True)
    for directory in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "tmp", "proc", "sys"):
        (dest / directory).mkdir(parents=True, exist_ok=True)
    (dest / "tmp").chmod(0o1777)
    if not BUSYBOX.is_file():
        raise ImageBuildError(f"{BUSYBOX} is missing (install Debian's busybox-static)")
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run(
        [str(BUSYBOX), "--list-full"], check=True, capture_output=True, text=True
    ).stdout.split()
    for applet in applets:
        link = dest / applet
        if link.name == "busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    python = dest / "usr" / "bin" / "python3"
    if not python.exists():
        python.symlink_to("python3.11")
    (dest / "usr" / "lib" / "python3.11" / "EXTERNALLY-MANAGED").unlink(missing_ok=True)
    wheels = sorted((dest / "usr" / "share" / "python-wheels").glob("pip-*.whl"))
    if not wheels:
        raise ImageBuildError("the python3-pip-whl package holds no pip wheel")
    # pip installed from its wheel (not run from inside the zip) so that its modules can
    # be byte-compiled: Debian compiles at install time, dpkg-deb -x does not.
    with zipfile.ZipFile(wheels[-1]) as wheel:
        wheel.extractall(dest / SITE_PACKAGES)
    pip = dest / "usr" / "local" / "bin" / "pip"
    pip.parent.mkdir(parents=True, exist_ok=True)
    pip.write_text(PIP_WRAPPER)
    pip.chmod(0o755)
    _byte_compile(dest)


def _byte_compile(dest: Path) -> None:
    """Compile the standard library and pip once, so each `python3` in a build starts
    fast. Needs chroot (root); without it the image still works, only slower."""
    if os.geteuid() != 0:
        return
    subprocess.run(
        [
            "chroot",
            str(dest),
            "/usr/bin/python3.11",
            "-m",
            "compileall",
            "-q",
            "/usr/lib/python3.11",
            "/" + SITE_PACKAGES,
        ],
        capture_output=True,
    )


def rootfs_tarball(cache: Path) -> Path:
    """The base image's rootfs as a tarball in `cache`, made once."""
    tarball = cache / "python-3.11-rootfs.tar"
    if tarball.exists():
        return tarball
    debs = download_packages(cache / "debs")
    with tempfile.TemporaryDirectory(dir=cache) as work:
        rootfs = Path(work) / "rootfs"
        rootfs.mkdir()
        make_rootfs(debs, rootfs)
        partial = Path(work) / "rootfs.tar"
        subprocess.run(
            ["tar", "--numeric-owner", "--sort=name", "-C", str(rootfs), "-cf", str(partial), "."],
            check=True,
        )
        os.replace(partial, tarball)
    return tarball


def ensure_python_image(root: StateRoot, cache: Path, name: str = IMAGE_NAME) -> str:
    """Make sure `name` exists in the state root; returns its manifest digest."""
    images = ImageStore(root)
    found = images.get(name)
    if found is not None:
        return found
    tarball = rootfs_tarball(cache)
    with open(tarball, "rb") as fh:
        manifest = import_tarball(
            images, fh, source=str(tarball), changes=list(ENV), message="strata example base"
        )
    images.put(name, manifest)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cache", type=Path, default=Path(".cache/strata-example"))
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--name", default=IMAGE_NAME)
    args = parser.parse_args(argv)
    from strata.client import default_root

    args.cache.mkdir(parents=True, exist_ok=True)
    root = StateRoot.open(args.root or default_root())
    try:
        manifest = ensure_python_image(root, args.cache.resolve(), args.name)
    except ImageBuildError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    finally:
        root.close()
    print(f"{args.name} {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
