"""Pushes against Debian's docker-registry on 127.0.0.1: `build --push`, `-o type=registry`,
`strata push`, read back by skopeo; cross-repository mounts for a pulled base; nothing
uploaded twice; htpasswd, token auth and TLS; exporter attributes."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.guide_fixtures import busybox_tarball  # noqa: F401 - fixture
from tests.integration.image_fixtures import strata
from tests.integration.registry_servers import (
    RegistryServer,
    make_tls,
    registry_available,
    registry_server,
    seed_image,
    skopeo_available,
    token_server,
)

_missing = registry_available() or skopeo_available()
pytestmark = [
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.timeout(600),
]
PASSWORD = "push-password-123"


@pytest.fixture(scope="module")
def base_archive(tmp_path_factory: pytest.TempPathFactory, busybox_tarball: Path) -> Path:  # noqa: F811
    """busybox as an OCI archive (one layer), for seeding registries."""
    base = tmp_path_factory.mktemp("push-base")
    seed_root = base / "seed-root"
    archive = base / "busybox.oci.tar"
    made = strata(seed_root, "import", "-c", 'CMD ["sh"]', str(busybox_tarball), "busybox:1")
    assert made.returncode == 0, made.stderr
    saved = strata(seed_root, "save", "--format", "oci", "-o", str(archive), "busybox:1")
    assert saved.returncode == 0, saved.stderr
    return archive


@pytest.fixture
def registry(tmp_path: Path, base_archive: Path) -> Iterator[RegistryServer]:
    """A plain-HTTP registry holding busybox as `library/base:1`."""
    with registry_server(tmp_path) as reg:
        seed_image(reg, "library/base", "1", tmp_path, source=f"oci-archive:{base_archive}")
        yield reg


def skopeo(*args: str, home: Path) -> subprocess.CompletedProcess[bytes]:
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(home)}
    return subprocess.run(
        ["skopeo", "--insecure-policy", *args], capture_output=True, env=env, timeout=120
    )


def project(tmp_path: Path, dockerfile: str) -> Path:
    context = tmp_path / "context"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(dockerfile)
    return context


def uploads_of(reg: RegistryServer, repository: str, digest: str) -> int:
    """Upload requests to `repository` (PUT with `digest=`) that carried `digest`."""
    return sum(
        1
        for e in reg.requests()
        if e.method in ("PUT", "PATCH")
        and e.path.startswith(f"/v2/{repository}/blobs/uploads/")
        and e.query.get("digest") == [digest]
    )


def tree(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted((directory / "blobs").rglob("*"))
        if p.is_file()
    }


def test_build_push_sends_the_image_and_mounts_the_base_layers(
    tmp_path: Path, registry: RegistryServer
) -> None:
    host = registry.host
    base_layers = json.loads(
        skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{host}/library/base:1",
            home=tmp_path / "sk",
        ).stdout
    )["layers"]
    context = project(tmp_path, f"FROM {host}/library/base:1\nRUN echo pushed > /made\n")
    root = tmp_path / "root"
    ref = f"{host}/team/app:1"
    metadata = tmp_path / "metadata.json"

    built = strata(
        root,
        "build",
        "--progress=plain",
        "--push",
        "-t",
        ref,
        "--metadata-file",
        str(metadata),
        str(context),
    )

    log = built.stderr.decode()
    assert built.returncode == 0, log
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}", home=tmp_path / "sk")
    assert raw.returncode == 0, raw.stderr
    manifest = json.loads(raw.stdout)
    digest = "sha256:" + __import__("hashlib").sha256(raw.stdout).hexdigest()
    assert manifest["layers"][0]["digest"] == base_layers[0]["digest"]
    assert len(manifest["layers"]) == 2
    # The base layer came from library/base on the same registry: mounted, not uploaded.
    mounts = [e for e in registry.requests() if e.method == "POST" and "mount" in e.query]
    assert any(e.query["mount"] == [base_layers[0]["digest"]] for e in mounts), registry.requests()
    assert all(e.query["from"] == ["library/base"] for e in mounts)
    assert uploads_of(registry, "team/app", base_layers[0]["digest"]) == 0
    assert uploads_of(registry, "team/app", manifest["layers"][1]["digest"]) == 1
    # BuildKit's progress lines and buildx's metadata.
    assert "exporting to image" in log
    assert re.search(r"exporting manifest sha256:[0-9a-f]{64} done", log), log
    assert re.search(r"exporting config sha256:[0-9a-f]{64} done", log), log
    assert "pushing layers" in log
    assert f"pushing manifest for {ref}@{digest}" in log
    written = json.loads(metadata.read_text())
    assert written["containerimage.digest"] == digest
    assert written["image.name"] == ref
    # skopeo's copy of what was pushed holds exactly strata's own OCI export.
    copied = tmp_path / "copied"
    done = skopeo(
        "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{copied}:1", home=tmp_path / "sk"
    )
    assert done.returncode == 0, done.stderr
    exported = tmp_path / "exported"
    again = strata(
        root, "build", "-q", "-t", ref, "-o", f"type=oci,dest={exported},tar=false", str(context)
    )
    assert again.returncode == 0, again.stderr
    assert tree(copied) == tree(exported)


def test_strata_push_skips_what_exists_and_mounts_across_repositories(
    tmp_path: Path, registry: RegistryServer
) -> None:
    host = registry.host
    root = tmp_path / "root"
    context = project(tmp_path, f"FROM {host}/library/base:1\nRUN echo two > /two\n")
    assert strata(root, "build", "-q", "-t", f"{host}/team/app:2", str(context)).returncode == 0

    first = strata(root, "push", f"{host}/team/app:2")
    posts_after_first = [e for e in registry.requests() if e.method == "POST"]
    again = strata(root, "push", f"{host}/team/app:2")
    posts_after_again = [e for e in registry.requests() if e.method == "POST"]
    tagged = strata(root, "tag", f"{host}/team/app:2", f"{host}/other/app:3")
    moved = strata(root, "push", f"{host}/other/app:3")

    out = first.stdout.decode()
    assert first.returncode == 0, first.stderr.decode()
    lines = out.splitlines()
    assert lines[0] == f"The push refers to repository [{host}/team/app]"
    assert re.fullmatch(r"[0-9a-f]{12}: Pushed", lines[1]), out
    assert re.fullmatch(r"[0-9a-f]{12}: Mounted from library/base", lines[2]), out
    assert re.fullmatch(r"2: digest: sha256:[0-9a-f]{64} size: \d+", lines[3]), out
    # A second push uploads nothing: every blob exists.
    assert again.returncode == 0, again.stderr.decode()
    assert again.stdout.decode().count("Layer already exists") == 2
    assert posts_after_again == posts_after_first
    # Another repository of the registry: every layer is mounted from team/app or base.
    assert tagged.returncode == 0, tagged.stderr.decode()
    assert moved.returncode == 0, moved.stderr.decode()
    assert moved.stdout.decode().count("Mounted from") == 2, moved.stdout.decode()
    assert not [
        e
        for e in registry.requests()
        if e.method in ("PATCH", "PUT") and e.path.startswith("/v2/other/app/blobs/")
    ]


def test_output_type_registry_with_zstd_and_docker_media_types(
    tmp_path: Path, registry: RegistryServer
) -> None:
    host = registry.host
    root = tmp_path / "root"
    context = project(tmp_path, f"FROM {host}/library/base:1\nRUN echo z > /z\n")

    zstd = strata(
        root,
        "build",
        "-q",
        "-o",
        f"type=registry,name={host}/team/z:1,compression=zstd,force-compression=true",
        str(context),
    )
    docker = strata(
        root,
        "build",
        "-q",
        "-o",
        f"type=image,name={host}/team/d:1,push=true,oci-mediatypes=false",
        str(context),
    )

    assert zstd.returncode == 0, zstd.stderr.decode()
    manifest = json.loads(
        skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{host}/team/z:1",
            home=tmp_path / "sk",
        ).stdout
    )
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert {layer["mediaType"] for layer in manifest["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    copied = skopeo(
        "copy",
        "--src-tls-verify=false",
        f"docker://{host}/team/z:1",
        f"dir:{tmp_path / 'zdir'}",
        home=tmp_path / "sk",
    )
    assert copied.returncode == 0, copied.stderr
    assert docker.returncode == 0, docker.stderr.decode()
    manifest = json.loads(
        skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{host}/team/d:1",
            home=tmp_path / "sk",
        ).stdout
    )
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    assert {layer["mediaType"] for layer in manifest["layers"]} == {
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    }


def test_an_unknown_exporter_attribute_is_an_error_naming_it(tmp_path: Path) -> None:
    context = project(tmp_path, "FROM scratch\nENV A=1\n")

    done = strata(tmp_path / "root", "build", "-o", "type=image,name=x,bogus-attr=1", str(context))

    assert done.returncode == 1
    assert "bogus-attr" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


def test_oci_tar_false_writes_a_layout_umoci_unpacks(tmp_path: Path, busybox_tarball: Path) -> None:  # noqa: F811
    if shutil.which("umoci") is None:
        pytest.skip("needs umoci on PATH")
    root = tmp_path / "root"
    assert strata(root, "import", str(busybox_tarball), "bb:1").returncode == 0
    context = project(tmp_path, "FROM bb:1\nRUN echo layout > /layout\n")
    dest = tmp_path / "layout"

    done = strata(
        root, "build", "-q", "-t", "app:1", "-o", f"type=oci,dest={dest},tar=false", str(context)
    )

    assert done.returncode == 0, done.stderr.decode()
    unpacked = subprocess.run(
        ["umoci", "unpack", "--image", f"{dest}:1", str(tmp_path / "bundle")], capture_output=True
    )
    assert unpacked.returncode == 0, unpacked.stderr
    assert (tmp_path / "bundle" / "rootfs" / "layout").read_text() == "layout\n"


def docker_config(directory: Path, host: str, user: str, password: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    (directory / "config.json").write_text(json.dumps({"auths": {host: {"auth": auth}}}))
    return directory


def import_named(root: Path, busybox: Path, name: str) -> None:
    done = strata(root, "import", str(busybox), name)
    assert done.returncode == 0, done.stderr.decode()


def test_push_with_htpasswd_credentials_and_a_wrong_password(
    tmp_path: Path,
    busybox_tarball: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "root"
    with registry_server(tmp_path, htpasswd={"alice": PASSWORD}) as reg:
        name = f"{reg.host}/team/bb:1"
        import_named(root, busybox_tarball, name)
        monkeypatch.setenv(
            "DOCKER_CONFIG", str(docker_config(tmp_path / "bad", reg.host, "alice", "nope"))
        )
        refused = strata(root, "push", name)
        monkeypatch.setenv(
            "DOCKER_CONFIG", str(docker_config(tmp_path / "good", reg.host, "alice", PASSWORD))
        )
        pushed = strata(root, "push", name)
        listed = reg.count("PUT", r"^/v2/team/bb/manifests/1$", 201)

    error = refused.stderr.decode().strip().splitlines()
    assert refused.returncode == 1
    assert len(error) == 1 and "Traceback" not in error[0], error
    assert PASSWORD not in refused.stderr.decode() and "nope" not in refused.stderr.decode()
    assert pushed.returncode == 0, pushed.stderr.decode()
    assert listed == 1


def test_push_with_token_auth_asks_for_pull_and_push(
    tmp_path: Path,
    busybox_tarball: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "root"
    with (
        token_server(tmp_path, users={"alice": PASSWORD}) as tokens,
        registry_server(tmp_path, auth=tokens.registry_auth()) as reg,
    ):
        name = f"{reg.host}/team/tok:1"
        import_named(root, busybox_tarball, name)
        monkeypatch.setenv(
            "DOCKER_CONFIG", str(docker_config(tmp_path / "dc", reg.host, "alice", PASSWORD))
        )
        pushed = strata(root, "push", name)
        scopes = {s for g in tokens.grants for s in g.scopes}
        tokens.deny.add("team/denied")
        denied_name = f"{reg.host}/team/denied:1"
        assert strata(root, "tag", name, denied_name).returncode == 0
        denied = strata(root, "push", denied_name)

    assert pushed.returncode == 0, pushed.stderr.decode()
    assert "repository:team/tok:pull,push" in scopes, scopes
    assert denied.returncode == 1
    error = denied.stderr.decode().strip().splitlines()
    assert len(error) == 1, error
    assert "push access denied, repository does not exist or may require authorization" in error[0]


def test_push_over_tls_with_the_runs_ca(tmp_path: Path, busybox_tarball: Path) -> None:  # noqa: F811
    tls = make_tls(tmp_path)
    root = tmp_path / "root"
    with registry_server(tmp_path, tls=tls) as reg:
        config = tmp_path / "strata.toml"
        config.write_text(f'[registry."{reg.host}"]\n  http = false\n  ca = ["{tls.ca_cert}"]\n')
        name = f"{reg.host}/team/tls:1"
        import_named(root, busybox_tarball, name)
        pushed = strata(root, "--config", str(config), "push", name)
        stored = reg.count("PUT", r"^/v2/team/tls/manifests/1$", 201)
        # registry.insecure=true: HTTPS without verification, no configuration needed.
        assert strata(root, "tag", name, "bb:1").returncode == 0
        context = project(tmp_path, "FROM bb:1\nENV PUSHED=insecure\n")
        insecure = strata(
            root,
            "build",
            "-q",
            "-o",
            f"type=registry,name={reg.host}/team/ins:1,registry.insecure=true",
            str(context),
        )
        stored_insecure = reg.count("PUT", r"^/v2/team/ins/manifests/1$", 201)

    assert pushed.returncode == 0, pushed.stderr.decode()
    assert stored == 1
    assert insecure.returncode == 0, insecure.stderr.decode()
    assert stored_insecure == 1


@pytest.fixture
def docker_engine(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Debian's dockerd on a private socket (vfs, no bridge), stopped afterwards; the
    environment for `docker` commands talking to it. Skips when it cannot start."""
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        pytest.skip("needs dockerd and docker on PATH (Debian docker.io)")
    base = Path(tempfile.mkdtemp(prefix="sdk-", dir="/tmp"))  # short: socket paths are limited
    socket = base / "d.sock"
    log = open(tmp_path / "dockerd.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [
            "dockerd",
            "--data-root",
            str(base / "data"),
            "--exec-root",
            str(base / "exec"),
            "--pidfile",
            str(base / "d.pid"),
            "-H",
            f"unix://{socket}",
            "--bridge=none",
            "--iptables=false",
            "--ip6tables=false",
            "--storage-driver=vfs",
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "DOCKER_HOST": f"unix://{socket}",
        "HOME": str(base),
        "DOCKER_CONFIG": str(base / "client"),
    }
    try:
        deadline = time.monotonic() + 60
        while True:
            probe = subprocess.run(["docker", "version"], env=env, capture_output=True, timeout=30)
            if probe.returncode == 0:
                break
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.skip(
                    "dockerd did not start here: "
                    + (tmp_path / "dockerd.log").read_text(errors="replace")[-300:]
                )
            time.sleep(0.5)
        yield env
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()
        subprocess.run(["umount", "-R", str(base)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_docker_pulls_and_runs_what_strata_pushed(
    tmp_path: Path, registry: RegistryServer, docker_engine: dict[str, str]
) -> None:
    host = registry.host
    root = tmp_path / "root"
    context = project(tmp_path, f"FROM {host}/library/base:1\nRUN echo from-strata > /made\n")
    ref = f"{host}/team/run:1"
    built = strata(root, "build", "-q", "--push", "-t", ref, str(context))
    assert built.returncode == 0, built.stderr.decode()

    pulled = subprocess.run(
        ["docker", "pull", ref], env=docker_engine, capture_output=True, timeout=120
    )
    ran = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", ref, "cat", "/made"],
        env=docker_engine,
        capture_output=True,
        timeout=120,
    )

    assert pulled.returncode == 0, pulled.stderr.decode()
    assert ran.returncode == 0, ran.stderr.decode()
    assert ran.stdout == b"from-strata\n"


def test_index_annotations_push_an_index_and_manifest_annotations_stay_on_it(
    tmp_path: Path, registry: RegistryServer
) -> None:
    host = registry.host
    context = project(tmp_path, f"FROM {host}/library/base:1\nRUN echo a > /a\n")
    ref = f"{host}/team/annotated:1"

    done = strata(
        tmp_path / "root",
        "build",
        "-q",
        "-o",
        f"type=registry,name={ref},annotation-index.org.example.index=yes,"
        "annotation.org.example.manifest=also,"
        "annotation-manifest-descriptor.org.example.desc=d",
        str(context),
    )

    assert done.returncode == 0, done.stderr.decode()
    index = json.loads(
        skopeo(
            "inspect", "--raw", "--tls-verify=false", f"docker://{ref}", home=tmp_path / "sk"
        ).stdout
    )
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert index["annotations"] == {"org.example.index": "yes"}
    entry = index["manifests"][0]
    assert entry["annotations"] == {"org.example.desc": "d"}
    assert entry["platform"]["os"] == "linux"
    manifest = json.loads(
        skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{host}/team/annotated@{entry['digest']}",
            home=tmp_path / "sk",
        ).stdout
    )
    assert manifest["annotations"] == {"org.example.manifest": "also"}


def test_annotation_flags_reach_the_pushed_manifest_and_index(
    tmp_path: Path, registry: RegistryServer
) -> None:
    host = registry.host
    context = project(tmp_path, f"FROM {host}/library/base:1\nRUN echo b > /b\n")
    ref = f"{host}/team/flagged:1"

    done = strata(
        tmp_path / "root",
        "build",
        "-q",
        "--push",
        "-t",
        ref,
        "--annotation",
        "org.example.plain=m",
        "--annotation",
        "index:org.example.top=i",
        str(context),
    )

    assert done.returncode == 0, done.stderr.decode()
    index = json.loads(
        skopeo(
            "inspect", "--raw", "--tls-verify=false", f"docker://{ref}", home=tmp_path / "sk"
        ).stdout
    )
    assert index["annotations"] == {"org.example.top": "i"}
    manifest = json.loads(
        skopeo(
            "inspect",
            "--raw",
            "--tls-verify=false",
            f"docker://{host}/team/flagged@{index['manifests'][0]['digest']}",
            home=tmp_path / "sk",
        ).stdout
    )
    assert manifest["annotations"] == {"org.example.plain": "m"}


def test_rewrite_timestamp_clamps_the_new_layers_file_times(
    tmp_path: Path,
    busybox_tarball: Path,  # noqa: F811
) -> None:
    root = tmp_path / "root"
    assert strata(root, "import", str(busybox_tarball), "bb:1").returncode == 0
    context = project(tmp_path, "FROM bb:1\nRUN echo t > /stamped\n")
    dest = tmp_path / "layout"

    done = strata(
        root,
        "build",
        "-q",
        "--build-arg",
        "SOURCE_DATE_EPOCH=1000",
        "-o",
        f"type=oci,dest={dest},tar=false,rewrite-timestamp=true,compression=uncompressed",
        str(context),
    )

    assert done.returncode == 0, done.stderr.decode()
    index = json.loads((dest / "index.json").read_text())
    manifest = json.loads(
        (dest / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_bytes()
    )
    top = manifest["layers"][-1]
    assert top["mediaType"] == "application/vnd.oci.image.layer.v1.tar"
    import tarfile

    with tarfile.open(dest / "blobs" / "sha256" / top["digest"][7:]) as tar:
        member = tar.getmember("stamped")
    assert member.mtime == 1000


def _podman(work: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """podman on storage of its own under `work` (no cgroups: the test machine may not
    delegate them), as root."""
    conf = work / "containers.conf"
    conf.write_text("[containers]\ndefault_ulimits = []\n")
    env = {
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(work),
        "CONTAINERS_CONF": str(conf),
    }
    # podman refuses a run root longer than 50 characters.
    runroot = Path(tempfile.gettempdir()) / f"pm-{abs(hash(str(work))) % 10**8}"
    try:
        return subprocess.run(
            # vfs: no overlay mounts left behind by a container that could not start.
            [
                "podman",
                "--root",
                str(work / "storage"),
                "--runroot",
                str(runroot),
                "--storage-driver",
                "vfs",
                *args,
            ],
            capture_output=True,
            env=env,
            timeout=300,
        )
    finally:
        shutil.rmtree(runroot, ignore_errors=True)


def _pushed_for_podman(tmp_path: Path, registry: RegistryServer) -> tuple[str, Path]:
    host = registry.host
    context = project(tmp_path, f"FROM {host}/library/base:1\nRUN echo from-strata > /msg\n")
    ref = f"{host}/team/podman:1"
    pushed = strata(tmp_path / "root", "build", "-q", "--push", "-t", ref, str(context))
    assert pushed.returncode == 0, pushed.stderr.decode()
    work = tmp_path / "podman"
    work.mkdir()
    return ref, work


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_podman_pulls_what_strata_pushed(tmp_path: Path, registry: RegistryServer) -> None:
    ref, work = _pushed_for_podman(tmp_path, registry)

    pulled = _podman(work, "pull", "--tls-verify=false", ref)
    inspected = _podman(work, "image", "inspect", "--format", "{{len .RootFS.Layers}}", ref)

    assert pulled.returncode == 0, pulled.stderr.decode()
    assert inspected.stdout.decode().strip() == "2"


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed")
def test_podman_runs_what_strata_pushed(tmp_path: Path, registry: RegistryServer) -> None:
    ref, work = _pushed_for_podman(tmp_path, registry)
    assert _podman(work, "pull", "--tls-verify=false", ref).returncode == 0

    ran = _podman(work, "run", "--rm", ref, "cat", "/msg")

    if ran.returncode != 0 and b"OCI" in ran.stderr:
        # The sandbox this runs in may refuse podman's rlimits or cgroups setup.
        pytest.skip(f"podman cannot run containers here: {ran.stderr.decode().strip()[-160:]}")
    assert ran.returncode == 0, ran.stderr.decode()
    assert ran.stdout == b"from-strata\n"
