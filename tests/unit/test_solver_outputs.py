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
        ("type=registry", "registry is not supported yet"),
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
