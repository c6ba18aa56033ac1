"""Registry credentials from Docker's config.json and credential helpers, as the docker CLI
reads and writes them.

Facts this module relies on (docker/cli `cli/config/configfile/file.go`,
`cli/config/credentials/{file_store,native_store}.go`, `cli/config/memorystore/store.go`;
docker-credential-helpers `client/client.go`, `credentials/error.go`):

- The file is `$DOCKER_CONFIG/config.json`, default `~/.docker/config.json`. Its `auths`
  map a key to `{auth: base64("user:password"), username, password, identitytoken,
  registrytoken}`; `auth`, when set, wins over `username`/`password`.
- Docker Hub's key is `https://index.docker.io/v1/` (for `docker.io`/`index.docker.io`);
  every other registry's key is its host[:port]. Old files may key a registry as a URL
  (`https://host/v1/`): the file store matches those by their host name.
- `credHelpers[key]` names a helper for one registry; else `credsStore` for all; else the
  `auths` entries are the credentials.
- A helper is the program `docker-credential-<name>`: `get` reads the server URL on stdin
  and prints `{"ServerURL","Username","Secret"}`; a failure whose output is
  `credentials not found in native keychain` means "none"; Username `<token>` means the
  Secret is an identity (refresh) token. `store` reads that JSON, `erase` reads the URL,
  `list` prints `{url: username}`.
- `DOCKER_AUTH_CONFIG` (JSON `{"auths": {key: {"auth": base64}}}`, nothing else) is
  consulted first; keys it lacks fall back to the file and helpers.
- Writes (`docker login`/`logout`) go to the helper when one applies, keeping a bare
  `auths` entry in the file; else into `auths` with the password base64-encoded in `auth`.
  The file is replaced atomically.

No secret ever reaches a message or a repr: `Credentials` shows only which parts are set.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from strata.errors import RegistryError, UsageError

HUB_KEY = "https://index.docker.io/v1/"
HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
TOKEN_USERNAME = "<token>"
NOT_FOUND_MESSAGE = "credentials not found in native keychain"
HELPER_PREFIX = "docker-credential-"
ENV_AUTH_CONFIG = "DOCKER_AUTH_CONFIG"
HELPER_TIMEOUT = 60.0


@dataclass(frozen=True, repr=False)
class Credentials:
    """What a registry may be given. Empty strings mean "not set"."""

    username: str = ""
    secret: str = ""  # password
    identity_token: str = ""  # refresh token (helper answered Username "<token>", or identitytoken)
    registry_token: str = ""  # bearer token used directly

    @property
    def empty(self) -> bool:
        return not (self.username or self.secret or self.identity_token or self.registry_token)

    def __repr__(self) -> str:
        hidden = [
            name
            for name, value in (
                ("secret", self.secret),
                ("identity_token", self.identity_token),
                ("registry_token", self.registry_token),
            )
            if value
        ]
        shown = f"username={self.username!r}"
        return f"Credentials({shown}{''.join(f', {name}=<hidden>' for name in hidden)})"

    __str__ = __repr__


def auth_config_key(domain: str) -> str:
    """The config.json key for a registry domain (`getAuthConfigKey` in docker/cli)."""
    return HUB_KEY if domain in HUB_ALIASES else domain


def convert_to_hostname(key: str) -> str:
    """`https://host:5000/v1/` -> `host:5000` (docker/cli `ConvertToHostname`)."""
    rest = key.split("://", 1)[1] if "://" in key else key
    return rest.split("/", 1)[0]


class CredentialStore:
    """Reads and writes credentials the way the docker CLI does (see the module docstring).

    The file is read afresh on each call: `docker login` in another terminal takes effect
    on the next pull, and nothing secret is kept in this object.
    """

    def __init__(
        self, config_dir: Path | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.env: Mapping[str, str] = os.environ if env is None else env
        if config_dir is None:
            if self.env.get("DOCKER_CONFIG"):
                config_dir = Path(self.env["DOCKER_CONFIG"])
            else:
                home = self.env.get("HOME") or str(Path.home())
                config_dir = Path(home) / ".docker"
        self.config_dir = config_dir
        self.file = config_dir / "config.json"

    def __repr__(self) -> str:
        return f"CredentialStore({str(self.file)!r})"

    # --- reading ------------------------------------------------------------------------

    def get(self, domain: str) -> Credentials:
        """The credentials for `domain` (`docker.io`, `ghcr.io`, `127.0.0.1:5000`);
        `Credentials()` when there are none."""
        key = auth_config_key(domain)
        from_env = self._env_auths().get(key)
        if from_env is not None:
            return from_env
        config = self._load()
        entry = self._file_entry(config, key)
        helper = self.helper_for(domain, config)
        if helper is None:
            return entry
        found = self._helper_get(helper, key, domain)
        # The native store keeps non-secret fields in the file and overlays the helper's answer.
        return Credentials(
            username=found.username,
            secret=found.secret,
            identity_token=found.identity_token,
            registry_token=entry.registry_token,
        )

    def helper_for(self, domain: str, config: Mapping[str, Any] | None = None) -> str | None:
        """The helper suffix that holds `domain`'s credentials (`credHelpers` over
        `credsStore`), or None when they live in the file."""
        config = self._load() if config is None else config
        key = auth_config_key(domain)
        helpers = config.get("credHelpers") or {}
        if key in helpers:
            return str(helpers[key]) or None
        store = config.get("credsStore")
        return str(store) if store else None

    def _file_entry(self, config: Mapping[str, Any], key: str) -> Credentials:
        auths = config.get("auths") or {}
        entry = auths.get(key)
        if entry is None:
            entry = next((v for k, v in auths.items() if convert_to_hostname(k) == key), None)
        if entry is None:
            return Credentials()
        where = f"auths.{json.dumps(key)}"
        if not isinstance(entry, dict):
            raise UsageError(f"{self.file}: {where}: expected an object")
        for field_name in ("auth", "username", "password", "identitytoken", "registrytoken"):
            if not isinstance(entry.get(field_name, ""), str):
                raise UsageError(f"{self.file}: {where}.{field_name}: expected a string")
        username, password = entry.get("username", ""), entry.get("password", "")
        if entry.get("auth"):
            decoded = _decode_auth(entry["auth"])
            if decoded is None:
                raise UsageError(f"{self.file}: {where}.auth: invalid auth configuration file")
            username, password = decoded
        return Credentials(
            username=username,
            secret=password,
            identity_token=entry.get("identitytoken", ""),
            registry_token=entry.get("registrytoken", ""),
        )

    def _env_auths(self) -> dict[str, Credentials]:
        text = self.env.get(ENV_AUTH_CONFIG, "")
        if not text:
            return {}
        problem = f'{ENV_AUTH_CONFIG}: expected {{"auths": {{"<registry>": {{"auth": "<base64 user:token>"}}}}}}'
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"{ENV_AUTH_CONFIG}: invalid JSON: {e.msg}") from None
        if (
            not isinstance(data, dict)
            or set(data) - {"auths"}
            or not isinstance(data.get("auths", {}), dict)
        ):
            raise UsageError(problem)
        out: dict[str, Credentials] = {}
        for key, entry in data.get("auths", {}).items():
            if not isinstance(entry, dict) or set(entry) - {"auth"}:
                raise UsageError(problem)
            if not entry.get("auth"):
                raise UsageError(
                    f"{ENV_AUTH_CONFIG} environment variable is missing key `auth` for {key}"
                )
            decoded = _decode_auth(entry["auth"]) if isinstance(entry["auth"], str) else None
            if decoded is None:
                raise UsageError(
                    f"{ENV_AUTH_CONFIG}: auths.{json.dumps(key)}.auth: invalid auth configuration"
                )
            out[key] = Credentials(username=decoded[0], secret=decoded[1])
        return out

    def _load(self) -> dict[str, Any]:
        try:
            text = self.file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read {self.file}: {e}") from None
        if not text.strip():
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"{self.file}:{e.lineno}: invalid JSON: {e.msg}") from None
        if not isinstance(data, dict):
            raise UsageError(f"{self.file}: expected a JSON object")
        for name, kind in (("auths", dict), ("credHelpers", dict), ("credsStore", str)):
            if name in data and data[name] is not None and not isinstance(data[name], kind):
                raise UsageError(
                    f"{self.file}: {name}: expected {'an object' if kind is dict else 'a string'}"
                )
        return data

    # --- writing ------------------------------------------------------------------------

    def store(self, domain: str, credentials: Credentials) -> None:
        """Save credentials as `docker login` does: into the helper when one applies (the
        file keeps an empty `auths` entry), else into the file's `auths`."""
        key = auth_config_key(domain)
        config = self._load()
        helper = self.helper_for(domain, config)
        entry: dict[str, str] = {}
        if helper is not None:
            username, secret = credentials.username, credentials.secret
            if credentials.identity_token:
                username, secret = TOKEN_USERNAME, credentials.identity_token
            payload = json.dumps({"ServerURL": key, "Username": username, "Secret": secret})
            self._run_helper(helper, "store", payload, "storing", domain)
        else:
            if credentials.username or credentials.secret:
                entry["auth"] = base64.b64encode(
                    f"{credentials.username}:{credentials.secret}".encode()
                ).decode("ascii")
            if credentials.identity_token:
                entry["identitytoken"] = credentials.identity_token
        if credentials.registry_token:
            entry["registrytoken"] = credentials.registry_token
        auths = config.get("auths")
        if not isinstance(auths, dict):
            auths = config["auths"] = {}
        auths[key] = entry
        self._save(config)

    def erase(self, domain: str) -> bool:
        """Remove the credentials as `docker logout` does (also the legacy `http://host`
        and `https://host` keys of the file); True if anything was removed."""
        key = auth_config_key(domain)
        config = self._load()
        helper = self.helper_for(domain, config)
        removed = False
        if helper is not None:
            removed = (
                self._run_helper(helper, "erase", key, "erasing", domain, missing_ok=True) is True
            )
        keys = [key] if key == HUB_KEY else [key, f"http://{key}", f"https://{key}"]
        auths = config.get("auths")
        if isinstance(auths, dict) and any(k in auths for k in keys):
            for k in keys:
                auths.pop(k, None)
            self._save(config)
            removed = True
        return removed

    def _save(self, config: Mapping[str, Any]) -> None:
        """Replace the file atomically: a temp file beside it (or beside the file a symlink
        points to), mode 0600 or the old file's mode, then rename."""
        target = Path(os.path.realpath(self.file))  # a dangling link: write where it points
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = json.dumps(config, indent="\t") + "\n"
        fd, temp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                try:
                    old = os.stat(target)
                    os.fchmod(out.fileno(), old.st_mode & 0o7777)
                    if os.geteuid() == 0:
                        os.fchown(out.fileno(), old.st_uid, old.st_gid)
                except FileNotFoundError:
                    os.fchmod(out.fileno(), 0o600)
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    # --- helpers ------------------------------------------------------------------------

    def _helper_get(self, helper: str, key: str, domain: str) -> Credentials:
        out = self._run_helper(helper, "get", key, "getting", domain, want_output=True)
        if not isinstance(out, str):
            return Credentials()
        try:
            answer = json.loads(out)
        except json.JSONDecodeError:
            raise RegistryError(
                f"error getting credentials - {HELPER_PREFIX}{helper} printed something that is not JSON",
                registry=domain,
            ) from None
        if not isinstance(answer, dict):
            raise RegistryError(
                f"error getting credentials - {HELPER_PREFIX}{helper} printed no JSON object",
                registry=domain,
            )
        username = str(answer.get("Username") or "")
        secret = str(answer.get("Secret") or "")
        if username == TOKEN_USERNAME:
            return Credentials(identity_token=secret)
        return Credentials(username=username, secret=secret)

    def list_helper(self, helper: str) -> dict[str, str]:
        """`docker-credential-<helper> list`: {server URL: username}."""
        out = self._run_helper(helper, "list", "unused", "listing", None, want_output=True)
        try:
            answer = json.loads(out) if isinstance(out, str) else {}
        except json.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise RegistryError(
                f"error listing credentials - {HELPER_PREFIX}{helper} printed no JSON object"
            )
        return {str(k): str(v) for k, v in answer.items()}

    def _run_helper(
        self,
        helper: str,
        verb: str,
        stdin: str,
        doing: str,
        domain: str | None,
        *,
        want_output: bool = False,
        missing_ok: bool = False,
    ) -> str | bool | None:
        """Run one helper verb. Returns its stdout (`want_output`), or whether it
        succeeded; None (or False) when it answered "credentials not found"."""
        program = HELPER_PREFIX + helper
        found = shutil.which(program, path=self.env.get("PATH", os.defpath))
        if found is None:
            raise RegistryError(
                f'error {doing} credentials - err: exec: "{program}": executable file not found in $PATH',
                registry=domain,
            )
        try:
            done = subprocess.run(
                [found, verb],
                input=stdin.encode(),
                capture_output=True,
                env=dict(self.env),
                timeout=HELPER_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RegistryError(
                f"error {doing} credentials - err: {program}: {e}", registry=domain
            ) from None
        out = done.stdout.decode(errors="replace").strip()
        if done.returncode != 0:
            if out == NOT_FOUND_MESSAGE or (missing_ok and NOT_FOUND_MESSAGE in out):
                return None if want_output else False
            # The helper's own words, as docker shows them; a helper prints no secret on failure.
            said = (out or done.stderr.decode(errors="replace").strip())[:300]
            raise RegistryError(
                f"error {doing} credentials - err: {program} exited with status {done.returncode}, out: `{said}`",
                registry=domain,
            )
        return done.stdout.decode(errors="replace") if want_output else True


def _decode_auth(text: str) -> tuple[str, str] | None:
    """base64("user:password") -> (user, password); None when malformed (docker/cli
    `decodeAuth`: the user must not be empty; NULs are trimmed off the password)."""
    try:
        decoded = base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        return None
    return username, password.strip("\x00")
