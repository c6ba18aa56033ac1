"""`strata login` / `strata logout` against real registries (htpasswd Basic auth, and
token auth with the test token server), writing config.json as `docker login` does (or
a credential helper on PATH), and builds that then work or are refused accordingly."""

from __future__ import annotations

import base64
import json
import stat
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from tests.integration.pull_support import (
    build,
    error_line,
    project,
    run_strata,
    write_strata_config,
)
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
    pytest.mark.timeout(300),
]

USER = "carol"
PASSWORD = "login-pw-0c4e2a9b"
WRONG = "login-wrong-93f1d2c7"

# docker-credential-e2etest: the helper protocol over a JSON file beside the script
# (`get`/`store`/`erase`/`list`, "credentials not found in native keychain" when absent).
HELPER = """#!/usr/bin/env python3
import json, os, sys
store = os.path.join(os.path.dirname(os.path.abspath(__file__)), "store.json")
data = json.load(open(store)) if os.path.exists(store) else {}
verb = sys.argv[1]
text = sys.stdin.read()
if verb == "store":
    entry = json.loads(text)
    data[entry["ServerURL"]] = [entry["Username"], entry["Secret"]]
elif verb == "get":
    if text.strip() not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    user, secret = data[text.strip()]
    print(json.dumps({"ServerURL": text.strip(), "Username": user, "Secret": secret}))
elif verb == "erase":
    if data.pop(text.strip(), None) is None:
        print("credentials not found in native keychain")
        sys.exit(1)
elif verb == "list":
    print(json.dumps({k: v[0] for k, v in data.items()}))
with open(store, "w") as out:
    json.dump(data, out)
"""


@contextmanager
def auth_registry(tmp_path: Path, kind: str) -> Iterator[RegistryServer]:
    """A registry holding `app/base:1` that only `USER`/`PASSWORD` may pull from."""
    with ExitStack() as stack:
        if kind == "htpasswd":
            reg = stack.enter_context(registry_server(tmp_path, htpasswd={USER: PASSWORD}))
        else:
            tokens = stack.enter_context(
                token_server(tmp_path, users={USER: PASSWORD}, allow_anonymous=False)
            )
            reg = stack.enter_context(registry_server(tmp_path, auth=tokens.registry_auth()))
        seed_image(reg, "app/base", "1", tmp_path, creds=(USER, PASSWORD))
        yield reg


def login(root: Path, env: dict[str, str], host: str, password: str) -> tuple[int, str, str]:
    done = run_strata(
        root, "login", "-u", USER, "--password-stdin", host, env=env, stdin=password.encode()
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def config_json(directory: Path) -> dict[str, object]:
    path = directory / "config.json"
    return json.loads(path.read_text()) if path.exists() else {}


@pytest.mark.parametrize("kind", ["htpasswd", "token"])
def test_login_writes_auths_as_docker_does_and_logout_erases_them(
    tmp_path: Path, kind: str
) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    env = {"DOCKER_CONFIG": str(docker)}
    root = tmp_path / "root"
    with auth_registry(tmp_path, kind) as reg:
        context = project(tmp_path / "ctx", f"FROM {reg.host}/app/base:1\nCOPY f /f\n", {"f": "x"})
        refused_login = run_strata(
            root, "login", "-u", USER, "--password-stdin", reg.host, env=env, stdin=WRONG.encode()
        )
        after_refusal = config_json(docker)
        status, out, err = login(root, env, reg.host, PASSWORD)
        stored = config_json(docker)
        mode = stat.S_IMODE((docker / "config.json").stat().st_mode)
        built = build(root, context, env=env)
        logout = run_strata(root, "logout", reg.host, env=env)
        after_logout = config_json(docker)
        refused = build(tmp_path / "root2", context, env=env)

    line = error_line(refused_login)
    assert reg.host in line, line
    assert WRONG not in refused_login.stdout.decode() + refused_login.stderr.decode()
    assert reg.host not in str(after_refusal.get("auths", {}))
    assert WRONG not in json.dumps(after_refusal)

    assert status == 0, err
    assert out.strip() == "Login Succeeded"
    expected = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert stored == {"auths": {reg.host: {"auth": expected}}}
    assert mode == 0o600
    assert built.returncode == 0, built.stderr.decode()

    assert logout.returncode == 0, logout.stderr.decode()
    assert logout.stdout.decode().strip() == f"Removing login credentials for {reg.host}"
    assert after_logout == {"auths": {}}
    line = error_line(refused)
    assert reg.host in line, line


@pytest.mark.parametrize("where", ["credsStore", "credHelpers"])
def test_login_through_a_credential_helper_keeps_the_secret_out_of_config_json(
    tmp_path: Path, where: str
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-e2etest"
    helper.write_text(HELPER)
    helper.chmod(0o755)
    docker = tmp_path / "docker"
    docker.mkdir()
    env = {"DOCKER_CONFIG": str(docker), "PATH": f"{bin_dir}:/usr/sbin:/usr/bin:/sbin:/bin"}
    root = tmp_path / "root"
    with auth_registry(tmp_path, "htpasswd") as reg:
        settings: dict[str, object] = (
            {"credsStore": "e2etest"}
            if where == "credsStore"
            else {"credHelpers": {reg.host: "e2etest"}}
        )
        (docker / "config.json").write_text(json.dumps(settings))
        context = project(tmp_path / "ctx", f"FROM {reg.host}/app/base:1\nCOPY f /f\n", {"f": "x"})
        status, _out, err = login(root, env, reg.host, PASSWORD)
        in_helper = json.loads((bin_dir / "store.json").read_text())
        in_file = (docker / "config.json").read_text()
        built = build(root, context, env=env)
        logout = run_strata(root, "logout", reg.host, env=env)
        in_helper_after = json.loads((bin_dir / "store.json").read_text())
        refused = build(tmp_path / "root2", context, env=env)

    assert status == 0, err
    assert in_helper == {reg.host: [USER, PASSWORD]}
    assert PASSWORD not in in_file
    assert json.loads(in_file)["auths"] == {reg.host: {}}
    assert built.returncode == 0, built.stderr.decode()
    assert logout.returncode == 0, logout.stderr.decode()
    assert in_helper_after == {}
    line = error_line(refused)
    assert "pull access denied" in line and reg.host in line, line


def test_login_to_a_tls_registry_uses_the_configured_ca(tmp_path: Path) -> None:
    docker = tmp_path / "docker"
    docker.mkdir()
    env = {"DOCKER_CONFIG": str(docker)}
    tls = make_tls(tmp_path / "tls")
    with registry_server(tmp_path, tls=tls, htpasswd={USER: PASSWORD}) as reg:
        no_ca = write_strata_config(
            tmp_path / "a.toml", f'[registry."{reg.host}"]\n  http = false\n'
        )
        with_ca = write_strata_config(
            tmp_path / "b.toml",
            f'[registry."{reg.host}"]\n  http = false\n  ca = ["{tls.ca_cert}"]\n',
        )
        refused = run_strata(
            tmp_path / "root",
            "login",
            "-u",
            USER,
            "--password-stdin",
            reg.host,
            env=env,
            config=no_ca,
            stdin=PASSWORD.encode(),
        )
        stored_after_refusal = config_json(docker)
        accepted = run_strata(
            tmp_path / "root",
            "login",
            "-u",
            USER,
            "--password-stdin",
            reg.host,
            env=env,
            config=with_ca,
            stdin=PASSWORD.encode(),
        )

    line = error_line(refused)
    assert reg.host in line and "TLS" in line, line
    assert stored_after_refusal == {}
    assert accepted.returncode == 0, accepted.stderr.decode()
    assert reg.host in json.dumps(config_json(docker)["auths"])
