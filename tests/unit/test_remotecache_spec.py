"""`--cache-to` / `--cache-from` parsed as buildx parses them, checked as strata can serve them."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from strata.cli.main import cli
from strata.errors import UsageError
from strata.remotecache.spec import CacheSpec, check_cache_spec, parse_cache_specs


def test_csv_attributes_and_several_flags() -> None:
    specs = parse_cache_specs(
        [
            "type=local,dest=/tmp/c,mode=max",
            '"type=registry","ref=r:5000/a:c",image-manifest=false',
        ],
        "to",
    )
    assert specs == (
        CacheSpec("local", (("dest", "/tmp/c"), ("mode", "max"))),
        CacheSpec("registry", (("ref", "r:5000/a:c"), ("image-manifest", "false"))),
    )
    assert specs[0].mode == "max" and specs[1].mode == "min"
    assert specs[1].flag("image-manifest", True) is False


def test_bare_references_are_registry_caches() -> None:
    assert parse_cache_specs(["user/app:cache"], "from") == (
        CacheSpec("registry", (("ref", "user/app:cache"),)),
    )
    # buildx isRefOnlyFormat: every field of a CSV without `=` is one reference.
    assert [s.get("ref") for s in parse_cache_specs(["a:1,b:2"], "from")] == ["a:1", "b:2"]


@pytest.mark.parametrize("kind", ["gha", "s3", "azblob"])
def test_cloud_backends_are_refused_naming_the_supported_types(kind: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_cache_specs([f"type={kind},scope=x"], "to")
    assert f'"{kind}" is not supported' in caught.value.message
    assert "registry, local, inline" in caught.value.message
    with pytest.raises(UsageError) as caught:
        parse_cache_specs([f"type={kind}"], "from")
    assert "(supported: registry, local)" in caught.value.message


@pytest.mark.parametrize(
    ("value", "direction", "words"),
    [
        ("type=local,dest=/x,colour=red", "to", ["colour", '"local"']),
        ("type=local,src=/x,mode=max", "from", ["mode"]),
        ("type=registry,ref=a,foo=1,bar=2", "to", ["attributes foo, bar"]),
        ("type=local,mode=max", "to", ["dest is required"]),
        ("type=local,dest=/x,mode=all", "to", ['invalid mode "all"']),
        ("type=local,dest=/x,image-manifest=maybe", "to", ["image-manifest"]),
        ("type=local,dest=/x,compression=lz4", "to", ["lz4"]),
        ("type=local,dest=/x,oci-mediatypes=false,image-manifest=true", "to", ["oci-mediatypes"]),
        ("type=inline,mode=max", "to", ["mode=min"]),
        ("type=foo", "to", ['unknown cache type "foo"']),
        ("ref=a", "to", ["type required"]),
        ("type=local,dest", "to", ["invalid value dest"]),
    ],
)
def test_bad_values_name_what_is_wrong(value: str, direction: str, words: list[str]) -> None:
    with pytest.raises(UsageError) as caught:
        parse_cache_specs([value], direction)  # type: ignore[arg-type]
    for word in words:
        assert word in caught.value.message, caught.value.message


def test_api_specs_are_checked_too() -> None:
    with pytest.raises(UsageError):
        check_cache_spec(CacheSpec("local", (("dst", "/x"),)), "to")
    spec = CacheSpec("inline")
    assert check_cache_spec(spec, "to") is spec


def test_cli_refuses_an_unsupported_cache_before_building(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    result = CliRunner().invoke(
        cli, ["--root", str(tmp_path / "root"), "build", "--cache-to", "type=gha", str(tmp_path)]
    )
    assert result.exit_code != 0
    assert 'cache type "gha" is not supported by strata' in result.output
    assert not (tmp_path / "root" / "metadata.db").exists()
