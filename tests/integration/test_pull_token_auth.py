"""`strata build` FROM an image on a token-auth registry (docker-registry + the test token
server): credentials from DOCKER_CONFIG give BuildKit's `[auth]` vertex and a build;
no credentials, or wrong ones, give one error line naming the registry, and the password
never shows up in the output or anywhere under the state root."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest

from tests.integration.pull_support import (
    auths_entry,
    build,
    docker_config,
    error_line,
    project,
    root_contains,
)
from tests.integration.registry_servers import (
    registry_available,
    registry_server,
    seed_image,
    skopeo_available,
    token_server,
)

_missing = registry_available() or skopeo_available()
pytestmark = [
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.timeout(300),
]

PASSWORD = "token-pw-7f3a9c1e"
WRONG = "wrong-pw-51d0be77"


def test_a_build_from_a_token_registry_uses_docker_config_and_refuses_without_it(
    tmp_path: Path,
) -> None:
    with (
        token_server(tmp_path, users={"alice": PASSWORD}) as tokens,
        registry_server(tmp_path, auth=tokens.registry_auth()) as reg,
    ):
        image = seed_image(
            reg, "team/base", "1", tmp_path, creds=("alice", PASSWORD), files={"base.txt": b"b\n"}
        )
        context = project(
            tmp_path / "ctx", f"FROM {image.reference}\nCOPY app.txt /app.txt\n", {"app.txt": "a"}
        )
        good = docker_config(
            tmp_path / "good", {"auths": {reg.host: auths_entry("alice", PASSWORD)}}
        )
        wrong = docker_config(
            tmp_path / "wrong", {"auths": {reg.host: auths_entry("alice", WRONG)}}
        )
        nobody = docker_config(tmp_path / "nobody", {})

        # As Docker Hub for a private repository: an anonymous token that grants nothing.
        tokens.deny = {"team/base"}
        anonymous = build(tmp_path / "root-anon", context, env=nobody)
        tokens.deny = set()
        # A token server that refuses anonymous callers outright.
        tokens.allow_anonymous = False
        no_token = build(tmp_path / "root-anon2", context, env=nobody)
        refused = build(tmp_path / "root-wrong", context, env=wrong)
        granted_before = len([g for g in tokens.grants if g.username == "alice"])
        done = build(tmp_path / "root", context, "-t", "made", env=good)

    log = done.stderr.decode()
    assert done.returncode == 0, log
    assert f"[auth] team/base:pull token for {reg.host}" in log
    assert f"[internal] load metadata for {image.reference}" in log
    assert re.search(r"^#\d+ sha256:[0-9a-f]{64} \S+ / \S+ .*done$", log, re.M), log
    assert not re.search(r"^#\d+ *$", log, re.M), log  # no empty status line
    assert len([g for g in tokens.grants if g.username == "alice"]) > granted_before

    line = error_line(anonymous)
    assert "pull access denied" in line, line
    assert line.count("access denied") == 1, line  # not said twice
    assert "insufficient_scope" in line, line
    assert reg.host in line, line

    line = error_line(no_token)
    assert reg.host in line and "401" in line, line

    line = error_line(refused)
    assert "401 Unauthorized" in line, line
    assert reg.host in line, line
    for result in (refused, done):
        assert PASSWORD.encode() not in result.stdout + result.stderr
        assert WRONG.encode() not in result.stdout + result.stderr
    for root, password in ((tmp_path / "root-wrong", WRONG), (tmp_path / "root", PASSWORD)):
        basic = base64.b64encode(f"alice:{password}".encode())
        assert root_contains(root, password.encode()) == []
        assert root_contains(root, basic) == []


def test_an_identity_token_or_docker_auth_config_also_authenticate_a_build(
    tmp_path: Path,
) -> None:
    refresh = "refresh-tok-9d2f61aa"
    with (
        token_server(
            tmp_path,
            users={"alice": PASSWORD},
            refresh_tokens={refresh: "alice"},
            allow_anonymous=False,
        ) as tokens,
        registry_server(tmp_path, auth=tokens.registry_auth()) as reg,
    ):
        image = seed_image(reg, "team/base", "1", tmp_path, creds=("alice", PASSWORD))
        context = project(tmp_path / "ctx", f"FROM {image.reference}\nCOPY f /f\n", {"f": "x"})
        by_identity = build(
            tmp_path / "root1",
            context,
            env=docker_config(tmp_path / "d1", {"auths": {reg.host: {"identitytoken": refresh}}}),
        )
        refresh_grants = [g for g in tokens.grants_by("POST") if g.grant_type == "refresh_token"]
        auth_config = json.dumps({"auths": {reg.host: auths_entry("alice", PASSWORD)}})
        by_env = build(
            tmp_path / "root2",
            context,
            env={**docker_config(tmp_path / "d2", {}), "DOCKER_AUTH_CONFIG": auth_config},
        )

    assert by_identity.returncode == 0, by_identity.stderr.decode()
    assert refresh_grants and all(g.status == 200 for g in refresh_grants)
    assert by_env.returncode == 0, by_env.stderr.decode()
    for done in (by_identity, by_env):
        assert refresh.encode() not in done.stdout + done.stderr
        assert PASSWORD.encode() not in done.stdout + done.stderr
    assert root_contains(tmp_path / "root1", refresh.encode()) == []
    assert root_contains(tmp_path / "root2", PASSWORD.encode()) == []


def test_a_token_server_without_oauth_and_a_denied_second_repository(tmp_path: Path) -> None:
    """POST answered 404 (no OAuth endpoint): the password goes by GET with Basic; a
    repository the token never grants (`insufficient_scope`, after one retry) is one line
    naming it."""
    with (
        token_server(tmp_path, users={"alice": PASSWORD}, allow_anonymous=False) as tokens,
        registry_server(tmp_path, auth=tokens.registry_auth()) as reg,
    ):
        base = seed_image(reg, "team/base", "1", tmp_path, creds=("alice", PASSWORD))
        secret = seed_image(
            reg, "team/secret", "1", tmp_path, creds=("alice", PASSWORD), files={"s": b"s"}
        )
        env = docker_config(tmp_path / "d", {"auths": {reg.host: auths_entry("alice", PASSWORD)}})
        tokens.post_404 = True
        tokens.deny = {"team/secret"}
        before = len(tokens.grants)
        allowed = build(
            tmp_path / "root",
            project(tmp_path / "ok", f"FROM {base.reference}\nCOPY f /f\n", {"f": "x"}),
            env=env,
        )
        grants = tokens.grants[before:]
        denied = build(
            tmp_path / "root",
            project(
                tmp_path / "no",
                f"FROM {base.reference}\nCOPY --from={secret.reference} /s /s\n",
            ),
            env=env,
        )

    assert allowed.returncode == 0, allowed.stderr.decode()
    assert any(g.method == "POST" and g.status == 404 for g in grants), grants
    assert any(g.method == "GET" and g.username == "alice" and g.status == 200 for g in grants)
    line = error_line(denied)
    assert secret.reference in line and "pull access denied" in line, line
    assert "insufficient_scope" in line and line.count("access denied") == 1, line
