"""`--format`'s Go template subset prints what docker's CLI prints for the same format."""

from __future__ import annotations

import pytest

from strata.cli.cache import docker_table
from strata.cli.gotemplate import go_json, go_print, parse_format, render_items
from strata.cli.history import ellipsis, history_fields
from strata.client import HistoryRecord
from strata.errors import UsageError
from strata.imagefilters import LIST_KEYS, PRUNE_KEYS, parse_image_filters, reference_matches

ITEM = {
    "ID": "abc",
    "Size": "1MB",
    "Config": {"Env": ["A=1", "B=2"], "Labels": {"b": "2", "a": "1"}},
}


def _render(value: str, items: list[dict[str, object]] | None = None) -> str:
    fmt = parse_format(value, table_default="table {{.ID}}")
    return render_items(
        fmt, items if items is not None else [ITEM], {"ID": "IMAGE ID"}, docker_table
    )


def test_fields_nested_fields_and_go_value_printing() -> None:
    assert _render("{{.ID}} {{.Config.Env}} {{.Config.Labels}}") == ("abc [A=1 B=2] map[a:1 b:2]\n")
    assert _render("{{.Missing}}") == "<no value>\n"


def test_json_forms_are_go_json() -> None:
    assert _render("{{json .Config.Labels}}") == '{"a":"1","b":"2"}\n'
    assert _render("{{.Config.Env | json}}") == '["A=1","B=2"]\n'
    assert _render("json", [{"x": "<&>"}]) == '{"x":"\\u003c\\u0026\\u003e"}\n'
    assert go_json({"b": 1, "a": [True, None]}) == '{"a":[true,null],"b":1}'


def test_table_prefix_gives_a_header_and_docker_columns() -> None:
    assert _render("table {{.ID}}\\t{{.Size}}") == "IMAGE ID   SIZE\nabc        1MB\n"
    assert _render("table") == "IMAGE ID\nabc\n"
    assert _render("table", []) == "IMAGE ID\n"
    assert _render("{{.ID}}", []) == ""


def test_functions_and_trimming() -> None:
    assert _render('{{upper .ID}}-{{join .Config.Env ","}}-{{index .Config.Labels "a"}}') == (
        "ABC-A=1,B=2-1\n"
    )
    assert _render("{{.ID -}}   x") == "abcx\n"


@pytest.mark.parametrize(
    "value", ["{{range .X}}{{end}}", "{{$x := .ID}}", "{{nosuch .ID}}", "{{.ID"]
)
def test_unsupported_templates_are_usage_errors(value: str) -> None:
    with pytest.raises(UsageError):
        _render(value)


def test_go_print_of_scalars() -> None:
    assert [go_print(v) for v in (True, None, 3, 2.0, "s")] == ["true", "<nil>", "3", "2", "s"]


def test_ellipsis_cuts_created_by_as_docker() -> None:
    assert ellipsis("a" * 45, 45) == "a" * 45
    assert ellipsis("a" * 46, 45) == "a" * 44 + "…"


def test_history_fields_truncate_and_humanize() -> None:
    record = HistoryRecord(
        id="sha256:" + "f" * 64,
        created=None,
        created_by="RUN\tmake " + "x" * 60,
        size=1234567,
        comment="buildkit.dockerfile.v0",
    )
    short = history_fields(record, 0.0, human=True, no_trunc=False)
    assert short["ID"] == "f" * 12
    assert short["CreatedBy"].startswith("RUN make ") and len(short["CreatedBy"]) == 45
    assert short["Size"] == "1.23MB"
    raw = history_fields(record, 0.0, human=False, no_trunc=True)
    assert (raw["ID"], raw["Size"]) == (record.id, "1234567")


def test_reference_filter_is_a_path_glob() -> None:
    assert reference_matches("demo*", "demo", "1")
    assert reference_matches("demo:1", "demo", "1")
    assert not reference_matches("*", "library/x", "1")
    assert reference_matches("*/*", "library/x", "1")


@pytest.mark.parametrize(
    ("items", "keys", "message"),
    [
        (["colour=red"], LIST_KEYS, "invalid filter 'colour'"),
        (["reference=x"], PRUNE_KEYS, "invalid filter 'reference'"),
        (["dangling=maybe"], LIST_KEYS, "dangling=maybe"),
        (["dangling=true", "dangling=false"], LIST_KEYS, "conflicting"),
        (["until=soon"], PRUNE_KEYS, "until=soon"),
        (["nokey"], LIST_KEYS, "bad format of filter"),
    ],
)
def test_bad_image_filters(items: list[str], keys: tuple[str, ...], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_image_filters(items, keys=keys)
