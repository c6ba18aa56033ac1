"""`strata build` FROM a registry serving HTTPS with a certificate from a CA made for this
run: refused (one line naming the registry and the TLS failure) until the strata config
names the CA in `[registry."HOST"] ca = [...]`, then pulled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.pull_support import build, error_line, project, write_strata_config
from tests.integration.registry_servers import (
    make_tls,
    registry_available,
    registry_server,
    seed_image,
    skopeo_available,
)

_missing = registry_available() or skopeo_available()
pytestmark = [
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.timeout(300),
]


def test_a_tls_registry_needs_its_ca_in_the_config(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    with registry_server(tmp_path, tls=tls) as reg:
        image = seed_image(reg, "secure/base", "1", tmp_path)
        context = project(tmp_path / "ctx", f"FROM {image.reference}\nCOPY f /f\n", {"f": "x"})
        without_ca = write_strata_config(
            tmp_path / "no-ca.toml", f'[registry."{reg.host}"]\n  http = false\n'
        )
        with_ca = write_strata_config(
            tmp_path / "ca.toml",
            f'[registry."{reg.host}"]\n  ca = ["{tls.ca_cert}"]\n  http = false\n',
        )
        refused = build(tmp_path / "root", context, config=without_ca)
        done = build(tmp_path / "root", context, "-t", "made", config=with_ca)
        manifest_gets = reg.count("GET", r"/v2/secure/base/manifests/")

    line = error_line(refused)
    assert reg.host in line, line
    assert "TLS" in line and "certificate verify failed" in line, line
    log = done.stderr.decode()
    assert done.returncode == 0, log
    assert f"[internal] load metadata for {image.reference}" in log
    assert manifest_gets >= 1


def test_a_tls_registry_on_loopback_without_config_is_one_error(tmp_path: Path) -> None:
    """Loopback registries default to plain HTTP (containerd's MatchLocalhost), which a
    TLS server refuses: the error names the registry, and no traceback."""
    tls = make_tls(tmp_path / "tls")
    with registry_server(tmp_path, tls=tls) as reg:
        image = seed_image(reg, "secure/base", "1", tmp_path)
        context = project(tmp_path / "ctx", f"FROM {image.reference}\n")
        refused = build(tmp_path / "root", context)

    line = error_line(refused)
    assert reg.host in line, line
    assert f'set http = false, and its ca, in [registry."{reg.host}"]' in line, line
