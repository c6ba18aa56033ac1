"""Shared pieces of the end-to-end pull tests (`test_pull_*.py`): the real `strata` CLI
run in a child process with its own environment (DOCKER_CONFIG, PATH, a strata config),
build contexts, and checks on what a failure prints and what the state root keeps.

The registries themselves come from `registry_servers.py` (docker-registry, a token
server, TLS files) and `tests/unit/fake_registry.py` (faults on demand).
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

STRATA = Path(sys.executable).parent / "strata"
RUN_TIMEOUT = 300


def run_strata(
    root: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    config: Path | None = None,
    stdin: bytes | None = None,
    timeout: float = RUN_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """`strata --root ROOT [--config FILE] ARGS...` with the environment `env` laid over
    this one (DOCKER_CONFIG and STRATA_CONFIG are dropped unless `env` gives them, so a
    test never reads the machine's credentials or registry configuration)."""
    environment = dict(os.environ, PROGRESS_NO_TRUNC="1")
    for name in ("DOCKER_CONFIG", "STRATA_CONFIG", "DOCKER_AUTH_CONFIG"):
        environment.pop(name, None)
    environment.update(env or {})
    extra = ["--config", str(config)] if config is not None else []
    return subprocess.run(
        [str(STRATA), "--root", str(root), *extra, *args],
        input=stdin,
        capture_output=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


def build(
    root: Path,
    context: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    config: Path | None = None,
    timeout: float = RUN_TIMEOUT,
) -> subprocess.CompletedProcess[bytes]:
    """`strata build --progress=plain ARGS... CONTEXT`."""
    return run_strata(
        root,
        "build",
        "--progress=plain",
        *args,
        str(context),
        env=env,
        config=config,
        timeout=timeout,
    )


def project(directory: Path, dockerfile: str, files: Mapping[str, str] | None = None) -> Path:
    """A build context holding `dockerfile` and `files`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (directory / name).write_text(text)
    return directory


def docker_config(directory: Path, config: Mapping[str, object]) -> dict[str, str]:
    """A DOCKER_CONFIG directory holding `config` as config.json; the env to use it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))
    return {"DOCKER_CONFIG": str(directory)}


def auths_entry(user: str, password: str) -> dict[str, str]:
    """One `auths` entry as `docker login` writes it."""
    return {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}


def error_line(done: subprocess.CompletedProcess[bytes]) -> str:
    """The one error line a failed command printed, checked to be the only one, with no
    traceback: exit 1 and exactly one `ERROR:`/`error:` line on stderr."""
    err = done.stderr.decode(errors="replace")
    assert done.returncode == 1, f"exit {done.returncode}\n{err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(("ERROR:", "error:", "Error:"))]
    assert len(lines) == 1, err
    return lines[0]


def root_contains(root: Path, secret: bytes) -> list[str]:
    """Files under the state root (and rows of metadata.db, read through SQLite so WAL
    content counts) that contain `secret`."""
    found = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            try:
                if secret in path.read_bytes():
                    found.append(str(path))
            except OSError:
                continue
    database = root / "metadata.db"
    if database.exists():
        db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
            for table in tables:
                for row in db.execute(f'SELECT * FROM "{table}"'):
                    text = repr(row).encode()
                    if secret in text:
                        found.append(f"metadata.db:{table}")
        finally:
            db.close()
    return found


def write_strata_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- pushing by hand (plain HTTP, no auth) -----------------------------------------------


def push_blob(registry_url: str, repository: str, data: bytes) -> dict[str, object]:
    """Upload `data` as a blob (POST then monolithic PUT); its descriptor, without
    mediaType."""
    import hashlib
    import urllib.parse
    import urllib.request

    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = urllib.request.Request(
        f"{registry_url}/v2/{repository}/blobs/uploads/", method="POST", data=b""
    )
    with urllib.request.urlopen(start, timeout=30) as answer:
        location = answer.headers["Location"]
    target = urllib.parse.urljoin(registry_url, location)
    target += ("&" if "?" in target else "?") + urllib.parse.urlencode({"digest": digest})
    put = urllib.request.Request(
        target,
        method="PUT",
        data=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    with urllib.request.urlopen(put, timeout=60) as answer:
        assert answer.status == 201, answer.status
    return {"digest": digest, "size": len(data)}


def push_manifest(
    registry_url: str, repository: str, reference: str, manifest: Mapping[str, object]
) -> dict[str, object]:
    """PUT a manifest or index (its `mediaType` is the Content-Type); its descriptor."""
    import hashlib
    import urllib.request

    body = json.dumps(manifest, sort_keys=True).encode()
    media_type = str(manifest["mediaType"])
    request = urllib.request.Request(
        f"{registry_url}/v2/{repository}/manifests/{reference}",
        method="PUT",
        data=body,
        headers={"Content-Type": media_type},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201, answer.status
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(body).hexdigest(),
        "size": len(body),
    }


def layer_tar_gz(files: Mapping[str, bytes]) -> tuple[bytes, str]:
    """A gzip layer holding `files` (reproducible bytes), and its diff ID."""
    import gzip
    import hashlib
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    return gzip.compress(raw.getvalue(), mtime=0), diff_id


def push_image(
    registry_url: str,
    repository: str,
    reference: str,
    files: Mapping[str, bytes],
    *,
    os_name: str = "linux",
    architecture: str = "amd64",
    run_config: Mapping[str, object] | None = None,
) -> dict[str, object]:
    """A one-layer OCI image for os/architecture pushed as `repository:reference`; the
    manifest's descriptor. `run_config` is added to the config's `config` (OnBuild,
    Labels, ...)."""
    layer, diff_id = layer_tar_gz(files)
    layer_desc = push_blob(registry_url, repository, layer)
    config = json.dumps(
        {
            "architecture": architecture,
            "os": os_name,
            "config": {
                "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                **(run_config or {}),
            },
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    config_desc = push_blob(registry_url, repository, config)
    return push_manifest(
        registry_url,
        repository,
        reference,
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer_desc}],
        },
    )
