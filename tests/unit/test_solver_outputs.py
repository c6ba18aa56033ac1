"""`-o/--output` parsing, as buildx reads the flag."""

from __future__ import annotations

import pytest

from strata.errors import UsageError
from strata.export.outputs import OutputSpec, parse_output, parse_outputs


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("out", OutputSpec(type="local", dest="out")),
        ("-", OutputSpec(type="tar", dest="-")),
        ("type=local,dest=build/out", OutputSpec(type="local", dest="build/out")),
        ("type=tar,dest=-", OutputSpec(type="tar", dest="-")),
        ("type=docker,dest=img.tar", OutputSpec(type="docker", dest="img.tar")),
        ("type=oci,dest=img.tar", OutputSpec(type="oci", dest="img.tar")),
        ("type=docker", OutputSpec(type="docker", dest=None)),
        ("type=image,name=a:1,push=false", OutputSpec("image", None, ("a:1",), {"push": "false"})),
        ("dest=only", OutputSpec(type="local", dest="only")),
    ],
)
def test_output_values(value: str, expected: OutputSpec) -> None:
    assert parse_output(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("type=local", "dest is required for local exporter"),
        ("type=tar", "dest is required for tar exporter"),
        ("type=zip,dest=x", 'unsupported output type "zip"'),
        ("type=image,bogus=1", 'unknown attribute "bogus" for the image exporter'),
        ("type=oci,dest=x,push=true", 'unknown attribute "push" for the oci exporter'),
        ("type=local,dest=x,compression=zstd", 'unknown attribute "compression"'),
        ("type=image,push=maybe", 'non-bool value "maybe" specified for push'),
        ("type=image,compression=lz4", 'unsupported compression type "lz4"'),
        ("type=image,compression=zstd,oci-mediatypes=false", "compression=zstd needs"),
        ("type=image,dest=x", 'unknown attribute "dest" for the image exporter'),
        ("type=docker,tar=false", "tar=false needs dest=DIR"),
        ("type=oci,dest=-,tar=false", "tar=false needs dest=DIR"),
        ("type=local,dest=-", "local exporter cannot write to stdout"),
        ("type=local,bare", "invalid value bare"),
    ],
)
def test_bad_output_values(value: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_output(value)


def test_two_outputs_on_stdout_are_refused() -> None:
    with pytest.raises(UsageError, match="only one output"):
        parse_outputs(["-", "type=docker,dest=-"])


def test_registry_is_an_image_output_that_pushes() -> None:
    spec = parse_output('type=registry,"name=r.io/a:1,r.io/b:2"')
    assert spec.names == ("r.io/a:1", "r.io/b:2")
    assert spec.options.push and spec.options.store


def test_image_attributes_are_read_into_options() -> None:
    spec = parse_output(
        "type=image,name=a,push=true,store=false,compression=zstd,compression-level=5,"
        "force-compression=true,oci-mediatypes=true,registry.insecure=true,"
        "push-by-digest=true,name-canonical=true,rewrite-timestamp=true,"
        "annotation.org.x=1,annotation-index.y=2,annotation-manifest-descriptor[linux/amd64].z=3"
    )
    options = spec.options
    assert (options.push, options.store, options.compression) == (True, False, "zstd")
    assert options.compression_level == 5 and options.force_compression and options.insecure
    assert options.push_by_digest and options.name_canonical and options.rewrite_timestamp
    assert options.annotations_for("annotation") == {"org.x": "1"}
    assert options.annotations_for("annotation-index") == {"y": "2"}
    assert options.annotations_for("annotation-manifest-descriptor") == {"z": "3"}
    assert options.needs_index and not options.is_default
    assert not spec.stores


def test_oci_tar_false_and_compression_are_archive_options() -> None:
    spec = parse_output("type=oci,dest=out,tar=false,compression=uncompressed")
    assert not spec.options.tar and spec.options.compression == "uncompressed"


def test_push_and_load_fold_into_the_outputs_as_buildx_does() -> None:
    assert parse_outputs([], push=True) == [OutputSpec("image", attrs={"push": "true"})]
    pushed = parse_outputs(["type=image,name=r.io/a:1"], push=True)
    assert pushed == [OutputSpec("image", None, ("r.io/a:1",), {"push": "true"})]
    loaded = parse_outputs(["type=oci,dest=x.tar"], load=True)
    assert [s.type for s in loaded] == ["oci", "docker"] and loaded[1].stores
    assert parse_outputs([], load=True) == []
    both = parse_outputs(["type=local,dest=d"], push=True, load=True)
    assert [s.type for s in both] == ["local", "image"]
