"""Writes the tiny pure-Python wheels the guide's package index serves.

    python3 index/make_wheel.py NAME VERSION 'python source of NAME/__init__.py'

A wheel is a zip holding the package and a `.dist-info` directory (METADATA, WHEEL and
RECORD with each file's sha256), which is all pip needs to install it. The zip entries
carry a fixed date so the same input always gives the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import sys
import zipfile
from pathlib import Path

FIXED_DATE = (2024, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def make_wheel(directory: Path, name: str, version: str, source: str) -> Path:
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": source.encode(),
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: strata-example\n"
            b"Root-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},{_record_hash(data)},{len(data)}\n" for path, data in files.items())
    files[f"{info}/RECORD"] = (record + f"{info}/RECORD,,\n").encode()
    target = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            entry = zipfile.ZipInfo(path, FIXED_DATE)
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, data)
    return target


if __name__ == "__main__":
    here = Path(__file__).resolve().parent / "packages"
    print(make_wheel(here, sys.argv[1], sys.argv[2], sys.argv[3]))
