"""A mirror from the strata config: a docker-registry in proxy mode in front of the origin
is asked first (its log shows the requests, with `?ns=<origin>`), and once it is stopped
the origin itself serves the build. The origin's credentials never go to the mirror
(checked with the fake registry, which logs request headers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.pull_support import (
    auths_entry,
    build,
    docker_config,
    error_line,
    layer_tar_gz,
    project,
    write_strata_config,
)
from tests.integration.registry_servers import (
    registry_available,
    registry_server,
    seed_image,
    skopeo_available,
)
from tests.unit.fake_registry import FakeRegistry, digest_of

_missing = registry_available() or skopeo_available()
pytestmark = [
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.timeout(300),
]


def test_the_mirror_is_used_first_and_skipped_when_it_is_down(tmp_path: Path) -> None:
    with registry_server(tmp_path, name="origin") as origin:
        image = seed_image(origin, "app/mirrored", "1", tmp_path, files={"m.txt": b"m\n"})
        before_origin = len(origin.requests())
        with registry_server(tmp_path, name="mirror", proxy_remote=origin.url) as mirror:
            config = write_strata_config(
                tmp_path / "strata.toml",
                f'[registry."{origin.host}"]\n  mirrors = ["{mirror.host}"]\n',
            )
            context = project(tmp_path / "ctx", f"FROM {image.reference}\nCOPY f /f\n", {"f": "x"})
            first = build(tmp_path / "root1", context, config=config)
            mirror_requests = mirror.requests()
        origin_during_first = origin.requests()[before_origin:]
        # The mirror is stopped now: a fresh root must get everything from the origin.
        second = build(tmp_path / "root2", context, config=config)
        origin_during_second = origin.requests()[before_origin + len(origin_during_first) :]

    assert first.returncode == 0, first.stderr.decode()
    manifests = [e for e in mirror_requests if "/v2/app/mirrored/manifests/" in e.path]
    blobs = [
        e
        for e in mirror_requests
        if e.path == f"/v2/app/mirrored/blobs/{image.layer_digests[0]}" and e.status == 200
    ]
    assert manifests and all(e.query.get("ns") == [origin.host] for e in manifests)
    assert blobs, mirror_requests
    # The origin was reached only by the mirror fetching on strata's behalf: no request
    # with strata's namespace parameter, and nothing the mirror did not ask for.
    assert all("ns" not in e.query for e in origin_during_first)

    log = second.stderr.decode()
    assert second.returncode == 0, log
    assert f"[internal] load metadata for {image.reference}" in log
    assert any(
        e.path == f"/v2/app/mirrored/blobs/{image.layer_digests[0]}" and e.status == 200
        for e in origin_during_second
    ), origin_during_second


def test_origin_credentials_are_never_sent_to_the_mirror(tmp_path: Path) -> None:
    with FakeRegistry() as origin, FakeRegistry() as mirror:
        origin.faults.auth = "basic"
        origin.faults.username, origin.faults.password = "dave", "origin-pw-2b7e"
        layer, diff_id = layer_tar_gz({"o.txt": b"o\n"})
        config = (
            '{"architecture":"amd64","os":"linux","config":{},'
            f'"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}'
        ).encode()
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": digest_of(layer),
                    "size": len(layer),
                }
            ],
        }
        for registry in (origin, mirror):
            registry.put_blob(config)
            registry.put_blob(layer)
            registry.put_json_manifest("team/app", manifest, tags=["1"])
        env = docker_config(
            tmp_path / "docker", {"auths": {origin.host: auths_entry("dave", "origin-pw-2b7e")}}
        )
        config_file = write_strata_config(
            tmp_path / "strata.toml", f'[registry."{origin.host}"]\n  mirrors = ["{mirror.host}"]\n'
        )
        context = project(
            tmp_path / "ctx", f"FROM {origin.host}/team/app:1\nCOPY f /f\n", {"f": "x"}
        )
        served = build(tmp_path / "root1", context, env=env, config=config_file)
        mirror_headers = [r.headers for r in mirror.log()]
        origin_before = len(origin.log())
        # The mirror loses the image: the origin answers, with the credentials.
        mirror.faults.statuses = [404] * 20
        fallen_back = build(tmp_path / "root2", context, env=env, config=config_file)
        origin_requests = origin.log()[origin_before:]

    assert served.returncode == 0, served.stderr.decode()
    assert mirror_headers and all("authorization" not in h for h in mirror_headers)
    assert all(r.query.get("ns") == [origin.host] for r in mirror.log() if "/v2/team/" in r.path)
    assert fallen_back.returncode == 0, fallen_back.stderr.decode()
    assert any(r.headers.get("authorization", "").startswith("Basic ") for r in origin_requests), (
        origin_requests
    )


def test_a_docker_io_name_goes_through_a_proxy_mirror_then_to_hub(tmp_path: Path) -> None:
    """docker.io's mirror is a pull-through cache of a local origin holding
    `library/thing:1`; with the mirror down, Docker Hub itself is asked (here through a
    dead HTTPS proxy, so the test never leaves the machine) and the error names it."""
    proxy = "http://who:proxy-pw-77@127.0.0.1:9"
    dead_proxy = {"HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": "", "no_proxy": ""}
    with registry_server(tmp_path, name="origin") as origin:
        seed_image(origin, "library/thing", "1", tmp_path, files={"t.txt": b"t\n"})
        context = project(tmp_path / "ctx", "FROM thing:1\nCOPY f /f\n", {"f": "x"})
        with registry_server(tmp_path, name="mirror", proxy_remote=origin.url) as mirror:
            config = write_strata_config(
                tmp_path / "strata.toml", f'[registry."docker.io"]\n  mirrors = ["{mirror.host}"]\n'
            )
            through_mirror = build(tmp_path / "root1", context, env=dead_proxy, config=config)
            mirror_manifests = [
                e for e in mirror.requests() if e.path.startswith("/v2/library/thing/manifests/")
            ]
        without_mirror = build(tmp_path / "root2", context, env=dead_proxy, config=config)

    log = through_mirror.stderr.decode()
    assert through_mirror.returncode == 0, log
    assert "[internal] load metadata for docker.io/library/thing:1" in log
    assert mirror_manifests and all(e.query.get("ns") == ["docker.io"] for e in mirror_manifests)
    line = error_line(without_mirror)
    assert "proxy-pw-77" not in without_mirror.stderr.decode()
    assert "docker.io/library/thing:1" in line, line
    assert "cannot reach registry-1.docker.io through the proxy 127.0.0.1:9" in line, line
