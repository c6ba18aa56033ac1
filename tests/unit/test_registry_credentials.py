"""strata.registry.credentials: config.json, credential helpers and DOCKER_AUTH_CONFIG as the
docker CLI reads and writes them."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from strata.errors import RegistryError, UsageError
from strata.registry.credentials import HUB_KEY, Credentials, CredentialStore


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def write_config(directory: Path, config: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(config))


# A helper that keeps its store in a JSON file next to it and logs every call.
HELPER = """\
#!{python}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
db_path = os.path.join(here, "store.json")
db = json.load(open(db_path)) if os.path.exists(db_path) else {{}}
verb = sys.argv[1]
data = sys.stdin.read()
with open(os.path.join(here, "calls.log"), "a") as log:
    log.write(verb + " " + (data if verb != "store" else json.loads(data)["ServerURL"]) + "\\n")
if verb == "get":
    if data not in db:
        print("credentials not found in native keychain")
        sys.exit(1)
    if db[data].get("Username") == "broken":
        print("the keychain is locked")
        sys.exit(1)
    print(json.dumps(dict(db[data], ServerURL=data)))
elif verb == "store":
    item = json.loads(data)
    db[item["ServerURL"]] = {{"Username": item["Username"], "Secret": item["Secret"]}}
    json.dump(db, open(db_path, "w"))
elif verb == "erase":
    if data not in db:
        print("credentials not found in native keychain")
        sys.exit(1)
    del db[data]
    json.dump(db, open(db_path, "w"))
elif verb == "list":
    print(json.dumps({{k: v["Username"] for k, v in db.items()}}))
"""


@pytest.fixture
def helper_dir(tmp_path: Path) -> Path:
    """A directory on PATH with `docker-credential-test` (and its store.json / calls.log)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    script = directory / "docker-credential-test"
    script.write_text(HELPER.format(python=sys.executable))
    script.chmod(0o755)
    return directory


def helper_db(helper_dir: Path, db: dict[str, dict[str, str]]) -> None:
    (helper_dir / "store.json").write_text(json.dumps(db))


def make_store(config_dir: Path, helper_dir: Path | None = None, **extra: str) -> CredentialStore:
    env = {"HOME": "/nonexistent", "PATH": str(helper_dir) if helper_dir else "/nonexistent"}
    env.update(extra)
    return CredentialStore(config_dir, env)


def test_repr_never_shows_secrets() -> None:
    creds = Credentials("alice", "hunter2", "idtok-123", "regtok-456")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds])):
        assert "alice" in text
        for secret in ("hunter2", "idtok-123", "regtok-456"):
            assert secret not in text
    assert "secret=<hidden>" in repr(creds)
    assert repr(Credentials()) == "Credentials(username='')"
    assert Credentials().empty and not creds.empty


def test_auths_base64_auth_and_plain_fields(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "auths": {
                "reg.example:5000": {"auth": b64("alice:pa:ss")},
                "plain.example": {"username": "bob", "password": "pw"},
                "both.example": {"auth": b64("carol:fromauth"), "username": "x", "password": "y"},
                "tok.example": {"identitytoken": "refresh-1", "registrytoken": "bearer-1"},
            }
        },
    )
    store = make_store(tmp_path)
    assert store.get("reg.example:5000") == Credentials("alice", "pa:ss")
    assert store.get("plain.example") == Credentials("bob", "pw")
    assert store.get("both.example") == Credentials("carol", "fromauth")
    assert store.get("tok.example") == Credentials(
        identity_token="refresh-1", registry_token="bearer-1"
    )
    assert store.get("other.example") == Credentials()


def test_docker_hub_uses_the_index_key(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {"auths": {HUB_KEY: {"auth": b64("hubuser:hubpw")}, "docker.io": {"auth": b64("no:no")}}},
    )
    store = make_store(tmp_path)
    assert store.get("docker.io") == Credentials("hubuser", "hubpw")
    assert store.get("index.docker.io") == Credentials("hubuser", "hubpw")


def test_legacy_url_keys_match_by_host(tmp_path: Path) -> None:
    write_config(tmp_path, {"auths": {"https://old.example:5000/v1/": {"auth": b64("u:p")}}})
    assert make_store(tmp_path).get("old.example:5000") == Credentials("u", "p")


def test_docker_config_env_and_home_default(tmp_path: Path) -> None:
    write_config(tmp_path / "cfg", {"auths": {"a.example": {"auth": b64("u1:p1")}}})
    write_config(tmp_path / "home" / ".docker", {"auths": {"a.example": {"auth": b64("u2:p2")}}})
    by_env = CredentialStore(
        env={"DOCKER_CONFIG": str(tmp_path / "cfg"), "HOME": str(tmp_path / "home")}
    )
    by_home = CredentialStore(env={"HOME": str(tmp_path / "home")})
    assert by_env.get("a.example").username == "u1"
    assert by_home.get("a.example").username == "u2"


def test_missing_or_empty_file_means_no_credentials(tmp_path: Path) -> None:
    assert make_store(tmp_path / "none").get("a.example") == Credentials()
    (tmp_path / "config.json").write_text("")
    assert make_store(tmp_path).get("a.example") == Credentials()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ('{"auths": {', "config.json:1: invalid JSON"),
        ('{"auths": []}', "auths: expected an object"),
        (
            '{"auths": {"a.example": {"auth": "%%%"}}}',
            'auths."a.example".auth: invalid auth configuration file',
        ),
        (
            '{"auths": {"a.example": {"auth": "' + b64(":nouser") + '"}}}',
            "invalid auth configuration file",
        ),
    ],
)
def test_malformed_config_is_a_usage_error_without_secrets(
    tmp_path: Path, content: str, fragment: str
) -> None:
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(UsageError) as info:
        make_store(tmp_path).get("a.example")
    assert fragment in str(info.value)
    assert "nouser" not in str(info.value)


def test_helper_get_and_token_username(tmp_path: Path, helper_dir: Path) -> None:
    helper_dir_db = {
        "reg.example": {"Username": "alice", "Secret": "s3cret"},
        "tok.example": {"Username": "<token>", "Secret": "refresh-xyz"},
    }
    helper_db(helper_dir, helper_dir_db)
    write_config(
        tmp_path, {"credsStore": "test", "auths": {"reg.example": {"auth": b64("file:file")}}}
    )
    store = make_store(tmp_path, helper_dir)
    assert store.get("reg.example") == Credentials("alice", "s3cret")
    assert store.get("tok.example") == Credentials(identity_token="refresh-xyz")
    # "credentials not found in native keychain" means none, not an error
    assert store.get("missing.example") == Credentials()
    calls = (helper_dir / "calls.log").read_text().splitlines()
    assert calls == ["get reg.example", "get tok.example", "get missing.example"]


def test_cred_helpers_win_over_creds_store_over_auths(tmp_path: Path, helper_dir: Path) -> None:
    other = helper_dir / "docker-credential-other"
    other.write_text(
        f"#!{sys.executable}\nimport json\nprint(json.dumps({{'Username': 'fromother', 'Secret': 'o'}}))\n"
    )
    other.chmod(0o755)
    helper_db(helper_dir, {"b.example": {"Username": "fromstore", "Secret": "s"}})
    write_config(
        tmp_path,
        {
            "credHelpers": {"a.example": "other"},
            "credsStore": "test",
            "auths": {
                "a.example": {"auth": b64("fromfile:f")},
                "b.example": {"auth": b64("fromfile:f")},
            },
        },
    )
    store = make_store(tmp_path, helper_dir)
    assert store.get("a.example").username == "fromother"
    assert store.get("b.example").username == "fromstore"
    assert store.helper_for("a.example") == "other"
    write_config(tmp_path, {"auths": {"a.example": {"auth": b64("fromfile:f")}}})
    assert store.get("a.example").username == "fromfile"
    assert store.helper_for("a.example") is None


def test_helper_failure_and_missing_helper_are_registry_errors(
    tmp_path: Path, helper_dir: Path
) -> None:
    helper_db(helper_dir, {"reg.example": {"Username": "broken", "Secret": "zzz-secret"}})
    write_config(tmp_path, {"credsStore": "test"})
    with pytest.raises(RegistryError) as info:
        make_store(tmp_path, helper_dir).get("reg.example")
    assert "the keychain is locked" in str(info.value)
    assert info.value.registry == "reg.example"
    assert "zzz-secret" not in str(info.value)
    write_config(tmp_path, {"credsStore": "absent"})
    with pytest.raises(
        RegistryError, match='"docker-credential-absent": executable file not found'
    ):
        make_store(tmp_path, helper_dir).get("reg.example")


def test_docker_auth_config_overrides_and_falls_back(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {"auths": {"a.example": {"auth": b64("file:f")}, "b.example": {"auth": b64("fileb:f")}}},
    )
    env_value = json.dumps({"auths": {"a.example": {"auth": b64("envuser:envpat")}}})
    store = make_store(tmp_path, DOCKER_AUTH_CONFIG=env_value)
    assert store.get("a.example") == Credentials("envuser", "envpat")
    assert store.get("b.example").username == "fileb"


@pytest.mark.parametrize(
    "value",
    [
        '{"auths": {"a.example": {"auth": "x", "username": "u"}}}',
        '{"auths": {"a.example": {}}}',
        '{"credsStore": "x"}',
        "{not json",
    ],
)
def test_docker_auth_config_is_strict(tmp_path: Path, value: str) -> None:
    with pytest.raises(UsageError, match="DOCKER_AUTH_CONFIG"):
        make_store(tmp_path, DOCKER_AUTH_CONFIG=value).get("a.example")


def test_store_into_file_as_docker_login(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "auths": {"keep.example": {"auth": b64("k:k")}},
            "psFormat": "table {{.ID}}",
            "x-custom": [1],
        },
    )
    store = make_store(tmp_path)
    store.store("docker.io", Credentials("hubuser", "hubpw"))
    store.store("tok.example", Credentials(identity_token="refresh-1"))
    data = json.loads((tmp_path / "config.json").read_text())
    assert data["psFormat"] == "table {{.ID}}"
    assert data["x-custom"] == [1]
    assert data["auths"]["keep.example"] == {"auth": b64("k:k")}
    assert data["auths"][HUB_KEY] == {"auth": b64("hubuser:hubpw")}
    assert data["auths"]["tok.example"] == {"identitytoken": "refresh-1"}
    assert store.get("docker.io") == Credentials("hubuser", "hubpw")


def test_new_file_is_private_and_no_temp_files_remain(tmp_path: Path) -> None:
    config_dir = tmp_path / "fresh"
    make_store(config_dir).store("a.example", Credentials("u", "p"))
    assert stat.S_IMODE(os.stat(config_dir / "config.json").st_mode) == 0o600
    assert sorted(p.name for p in config_dir.iterdir()) == ["config.json"]


def test_existing_file_mode_is_kept_and_symlink_followed(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write_config(real, {})
    os.chmod(real / "config.json", 0o640)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "config.json").symlink_to(real / "config.json")
    make_store(linked).store("a.example", Credentials("u", "p"))
    assert (linked / "config.json").is_symlink()
    assert stat.S_IMODE(os.stat(real / "config.json").st_mode) == 0o640
    assert json.loads((real / "config.json").read_text())["auths"]["a.example"]["auth"] == b64(
        "u:p"
    )


def test_store_and_erase_through_helper(tmp_path: Path, helper_dir: Path) -> None:
    write_config(
        tmp_path, {"credsStore": "test", "auths": {"reg.example": {"auth": b64("old:old")}}}
    )
    store = make_store(tmp_path, helper_dir)
    store.store("reg.example", Credentials("alice", "s3cret"))
    store.store("tok.example", Credentials(identity_token="refresh-9"))
    db = json.loads((helper_dir / "store.json").read_text())
    assert db["reg.example"] == {"Username": "alice", "Secret": "s3cret"}
    assert db["tok.example"] == {"Username": "<token>", "Secret": "refresh-9"}
    text = (tmp_path / "config.json").read_text()
    assert "s3cret" not in text and "refresh-9" not in text
    assert json.loads(text)["auths"]["reg.example"] == {}
    assert store.get("reg.example") == Credentials("alice", "s3cret")
    assert store.list_helper("test") == {"reg.example": "alice", "tok.example": "<token>"}

    assert store.erase("reg.example") is True
    assert "reg.example" not in json.loads((helper_dir / "store.json").read_text())
    assert "reg.example" not in json.loads((tmp_path / "config.json").read_text())["auths"]
    assert store.get("reg.example") == Credentials()
    assert store.erase("never.example") is False


def test_erase_from_file_removes_legacy_keys(tmp_path: Path) -> None:
    write_config(
        tmp_path,
        {
            "auths": {
                "a.example": {"auth": b64("u:p")},
                "https://a.example": {"auth": b64("u:p")},
                "b.example": {},
            }
        },
    )
    store = make_store(tmp_path)
    assert store.erase("a.example") is True
    assert json.loads((tmp_path / "config.json").read_text())["auths"] == {"b.example": {}}
    assert store.erase("a.example") is False
