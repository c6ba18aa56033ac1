"""`strata build` FROM a registry serving HTTPS with a certificate from a CA made for this
run: refused (one line naming the registry and the TLS failure) until the strata config
names the CA in `[registry."HOST"] ca = [...]`, then pulled."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.pull_support import build, error_line, project, write_strata_config
from tests.integration.registry_servers import (
    TLSFiles,
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


def client_certificate(tls: TLSFiles, directory: Path) -> tuple[Path, Path]:
    """A client certificate signed by the run's CA: (cert, key) PEM files."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_key = serialization.load_pem_private_key(tls.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(tls.ca_cert.read_bytes())
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "strata client")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    cert_file, key_file = directory / "client.cert", directory / "client.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def test_a_registry_asking_for_client_certificates_gets_the_configured_keypair(
    tmp_path: Path,
) -> None:
    tls = make_tls(tmp_path / "tls")
    cert, key = client_certificate(tls, tmp_path / "tls")
    with registry_server(tmp_path, tls=tls) as plain:
        image = seed_image(plain, "secure/base", "1", tmp_path)
        data = plain.directory / "data"
    # The same storage, served by a registry that requires a client certificate.
    mutual = {
        "addr": "127.0.0.1:0",
        "tls": {"certificate": str(tls.cert), "key": str(tls.key), "clientcas": [str(tls.ca_cert)]},
    }
    with registry_server(
        tmp_path,
        extra={
            "http": mutual,
            "storage": {"filesystem": {"rootdirectory": str(data)}},
        },
    ) as reg:
        ref = f"{reg.host}/secure/base:1"
        context = project(tmp_path / "ctx", f"FROM {ref}\nCOPY f /f\n", {"f": "x"})
        table = f'[registry."{reg.host}"]\n  ca = ["{tls.ca_cert}"]\n  http = false\n'
        without = build(
            tmp_path / "root", context, config=write_strata_config(tmp_path / "a.toml", table)
        )
        keypair = f'  [[registry."{reg.host}".keypair]]\n    key = "{key}"\n    cert = "{cert}"\n'
        done = build(
            tmp_path / "root",
            context,
            config=write_strata_config(tmp_path / "b.toml", table + keypair),
        )

    line = error_line(without)
    assert reg.host in line and "TLS" in line, line
    assert done.returncode == 0, done.stderr.decode()
    assert image.layer_digests


def test_insecure_skips_verification_and_with_http_falls_back_to_plain(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    with (
        registry_server(tmp_path, tls=tls, name="secure") as secure,
        registry_server(tmp_path, name="plain") as plain,
    ):
        on_tls = seed_image(secure, "any/base", "1", tmp_path, files={"s": b"tls\n"})
        on_plain = seed_image(plain, "any/base", "1", tmp_path, files={"p": b"plain\n"})
        config = write_strata_config(
            tmp_path / "strata.toml",
            f'[registry."{secure.host}"]\n  insecure = true\n  http = false\n'
            f'[registry."{plain.host}"]\n  insecure = true\n  http = true\n',
        )
        results = [
            build(
                tmp_path / "root",
                project(tmp_path / name, f"FROM {image.reference}\nCOPY f /f\n", {"f": name}),
                config=config,
            )
            for name, image in (("tls", on_tls), ("plain", on_plain))
        ]
        plain_manifests = plain.count("GET", r"/v2/any/base/manifests/", status=200)

    for done in results:
        assert done.returncode == 0, done.stderr.decode()
    assert plain_manifests >= 1
