"""RUN --mount values: every type's defaults, every key and alias, every error text."""

from __future__ import annotations

import pytest

from strata.dockerfile.mounts import (
    BindMount,
    CacheMount,
    SecretMount,
    SshMount,
    TmpfsMount,
    mount_from,
    parse_mount,
    parse_ram_size,
    split_csv,
)
from strata.dockerfile.shell import expand
from strata.errors import MountError, ShellError
from strata.gotext import go_path_base as base_name
from strata.gotext import go_path_clean as clean_path

ENV = {"HOME": "/root", "ID": "pip", "SIZE": "8m", "EMPTY": ""}


def _mount(value: str) -> object:
    return parse_mount(value, expand=lambda word: expand(word, ENV))


def _error(value: str) -> str:
    with pytest.raises(MountError) as caught:
        _mount(value)
    return caught.value.message


# -- defaults per type --------------------------------------------------------


def test_mount_without_type_is_a_read_only_bind_of_the_context() -> None:
    assert _mount("target=/src") == BindMount(target="/src", source="", from_="", read_only=True)


def test_bind_mount_reads_source_and_from() -> None:
    assert _mount("type=bind,from=build,source=/out,target=/in") == BindMount(
        target="/in", source="/out", from_="build", read_only=True
    )


def test_cache_mount_defaults_to_writable_shared_with_target_as_id() -> None:
    mount = _mount("type=cache,target=/root/.cache/pip/")
    assert isinstance(mount, CacheMount)
    assert (mount.read_only, mount.sharing, mount.id) == (False, "shared", "")
    assert mount.cache_id == "/root/.cache/pip"
    assert (mount.mode, mount.uid, mount.gid) == (None, None, None)


def test_cache_mount_id_default_is_the_cleaned_target_as_written() -> None:
    mount = _mount("type=cache,target=./cache/../data")
    assert isinstance(mount, CacheMount)
    assert mount.cache_id == "data"


def test_cache_mount_options() -> None:
    mount = _mount("type=cache,id=$ID,sharing=LOCKED,mode=0700,uid=1000,gid=1001,target=/c")
    assert mount == CacheMount(
        target="/c", id="pip", sharing="locked", mode=0o700, uid=1000, gid=1001
    )


def test_tmpfs_mount_defaults_to_writable_without_size() -> None:
    assert _mount("type=tmpfs,target=/tmp") == TmpfsMount(target="/tmp", read_only=False)


def test_tmpfs_size_accepts_binary_units() -> None:
    assert _mount("type=tmpfs,target=/t,size=$SIZE") == TmpfsMount(target="/t", size=8 << 20)


def test_secret_id_defaults_to_basename_of_target() -> None:
    mount = _mount("type=secret,target=/etc/app/token")
    assert isinstance(mount, SecretMount)
    assert (mount.id, mount.file_target, mount.required) == ("token", "/etc/app/token", False)


def test_secret_with_id_goes_under_run_secrets() -> None:
    mount = _mount("type=secret,id=aws")
    assert isinstance(mount, SecretMount)
    assert mount.file_target == "/run/secrets/aws"


def test_secret_source_is_its_id() -> None:
    mount = _mount("type=secret,src=npmrc")
    assert isinstance(mount, SecretMount)
    assert mount.id == "npmrc"


def test_env_secret_has_no_file_unless_target_given() -> None:
    only_env = _mount("type=secret,id=tok,env=TOKEN")
    both = _mount("type=secret,id=tok,env=TOKEN,target=/tok")
    assert isinstance(only_env, SecretMount) and isinstance(both, SecretMount)
    assert (only_env.env, only_env.file_target) == ("TOKEN", None)
    assert both.file_target == "/tok"


def test_secret_required_bare_and_with_value() -> None:
    assert _mount("type=secret,id=a,required") == SecretMount(id="a", required=True)
    assert _mount("type=secret,id=a,required=false") == SecretMount(id="a", required=False)


def test_secret_file_options() -> None:
    mount = _mount("type=secret,id=k,mode=0440,uid=1,gid=2")
    assert mount == SecretMount(id="k", mode=0o440, uid=1, gid=2)


def test_ssh_mount_defaults_to_the_default_agent() -> None:
    assert _mount("type=ssh") == SshMount(id="default", target="", required=False)


def test_ssh_mount_options() -> None:
    assert _mount("type=ssh,id=github,target=/agent,required=true,mode=0600") == SshMount(
        id="github", target="/agent", required=True, mode=0o600
    )


# -- keys and aliases ---------------------------------------------------------


@pytest.mark.parametrize("key", ["target", "dst", "destination", "TARGET", "Dst"])
def test_target_aliases_and_case_insensitive_keys(key: str) -> None:
    assert _mount(f"{key}=/x") == BindMount(target="/x")


@pytest.mark.parametrize("key", ["source", "src", "SRC"])
def test_source_aliases(key: str) -> None:
    assert _mount(f"{key}=a.txt,target=/a") == BindMount(target="/a", source="a.txt")


@pytest.mark.parametrize(
    ("option", "read_only"),
    [
        ("rw", False),
        ("readwrite", False),
        ("rw=true", False),
        ("rw=0", True),
        ("ro", True),
        ("readonly=F", False),
        ("readonly=TRUE", True),
    ],
)
def test_read_write_aliases_on_a_bind(option: str, read_only: bool) -> None:
    mount = _mount(f"target=/x,{option}")
    assert isinstance(mount, BindMount)
    assert mount.read_only is read_only


def test_read_only_cache() -> None:
    mount = _mount("type=cache,target=/c,ro")
    assert isinstance(mount, CacheMount)
    assert mount.read_only


def test_type_value_is_case_insensitive() -> None:
    assert isinstance(_mount("type=Cache,target=/c"), CacheMount)


def test_values_are_expanded_with_the_build_environment() -> None:
    assert _mount("type=cache,target=$HOME/.npm") == CacheMount(target="/root/.npm")


def test_from_is_taken_as_written_not_expanded() -> None:
    assert _mount("from=$,target=/x") == BindMount(target="/x", from_="$")


def test_expansion_errors_pass_through() -> None:
    with pytest.raises(ShellError):
        _mount("target=${MISSING:?needed}")


def test_quoted_csv_field_may_hold_a_comma() -> None:
    assert _mount('target=/x,"source=a,b"') == BindMount(target="/x", source="a,b")


def test_env_key_is_accepted_and_ignored_on_other_types() -> None:
    assert _mount("type=bind,target=/x,env=FOO") == BindMount(target="/x")


def test_id_is_ignored_on_a_bind() -> None:
    assert _mount("target=/x,id=foo") == BindMount(target="/x")


# -- errors -------------------------------------------------------------------


def test_unknown_key_with_hint() -> None:
    assert _error("type=cache,targte=/x") == (
        "unexpected key 'targte' in 'targte=/x' (did you mean target?)"
    )


def test_unknown_key_without_hint() -> None:
    assert _error("colour=blue") == "unexpected key 'colour' in 'colour=blue'"


def test_unknown_type_with_hint() -> None:
    assert _error("type=cahce") == 'unsupported mount type "cahce" (did you mean cache?)'


def test_unknown_type_without_hint() -> None:
    assert _error("type=volume") == 'unsupported mount type "volume"'


def test_unknown_sharing_with_hint() -> None:
    assert _error("type=cache,target=/c,sharing=lockd") == (
        'unsupported sharing value "lockd" (did you mean locked?)'
    )


def test_unknown_type_and_sharing_are_go_quoted() -> None:
    assert _error(r"type=a\\b") == r'unsupported mount type "a\\b"'
    assert _error("type=cache,sharing=x\ty") == r'unsupported sharing value "x\ty"'


@pytest.mark.parametrize("field", ["target", "Sharing", "uid"])
def test_field_without_value_must_be_a_pair(field: str) -> None:
    assert _error(f"type=cache,{field}") == f"invalid field '{field}' must be a key=value pair"


def test_empty_field_must_be_a_pair() -> None:
    assert _error("type=cache,target=/c,") == "invalid field '' must be a key=value pair"


@pytest.mark.parametrize("option", ["ro=maybe", "rw=yes", "readonly=", "required=2"])
def test_bad_booleans(option: str) -> None:
    key, value = option.split("=")
    prefix = "type=secret,id=s," if key == "required" else ""
    assert _error(prefix + option) == f"invalid value for {key}: {value}"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("mode=0789", "invalid value 0789 for mode"),
        ("mode=", "invalid value  for mode"),
        ("uid=-1", "invalid value -1 for uid"),
        ("gid=x", "invalid value x for gid"),
        ("uid=4294967296", "invalid value 4294967296 for uid"),
    ],
)
def test_bad_numbers(option: str, message: str) -> None:
    assert _error("type=cache,target=/c," + option) == message


@pytest.mark.parametrize("kind", ["bind", "tmpfs"])
@pytest.mark.parametrize("key", ["mode", "uid", "gid"])
def test_file_options_not_allowed_on_bind_and_tmpfs(kind: str, key: str) -> None:
    assert _error(f"type={kind},target=/x,{key}=1") == f'{key} not allowed for "{kind}" type mounts'


@pytest.mark.parametrize("kind", ["bind", "cache", "tmpfs"])
def test_required_only_for_secret_and_ssh(kind: str) -> None:
    message = f"unexpected key 'required' for mount type '{kind}'"
    assert _error(f"type={kind},target=/x,required") == message
    assert _error(f"type={kind},target=/x,required=true") == message


def test_size_only_for_tmpfs() -> None:
    assert _error("type=cache,target=/x,size=1m") == "unexpected key 'size' for mount type 'cache'"


def test_type_dependent_keys_see_the_type_parsed_so_far() -> None:
    assert _error("size=64m,type=tmpfs,target=/t") == (
        "unexpected key 'size' for mount type 'bind'"
    )
    assert _error("required,type=secret,id=x") == (
        "unexpected key 'required' for mount type 'bind'"
    )


def test_bad_size() -> None:
    assert _error("type=tmpfs,target=/t,size=lots") == "invalid value for size: lots"


@pytest.mark.parametrize("kind", ["bind", "tmpfs", "ssh"])
def test_sharing_only_for_cache(kind: str) -> None:
    assert _error(f"type={kind},target=/x,sharing=private") == (
        f"invalid cache sharing set for {kind} mount"
    )


def test_secret_rejects_from() -> None:
    assert _error("type=secret,id=s,from=build") == "secret mount should not have a from"


def test_secret_rejects_sharing() -> None:
    assert _error("type=secret,id=s,sharing=shared") == "secret mount should not define sharing"


def test_secret_needs_a_source_target_or_id() -> None:
    assert _error("type=secret,required") == (
        "invalid secret mount. one of source, target required"
    )


def test_secret_cannot_have_both_source_and_id() -> None:
    assert _error("type=secret,id=a,source=b") == "both source and id can't be set"


def test_ssh_rejects_source() -> None:
    assert _error("type=ssh,source=key") == "ssh does not support source"


def test_empty_value_is_a_csv_error() -> None:
    assert _error("") == "failed to parse csv mounts: EOF"


def test_unterminated_quote_is_a_csv_error() -> None:
    assert _error('type=bind,"target=/x') == (
        "failed to parse csv mounts: parse error on line 1, column 12: "
        'extraneous or missing " in quoted-field'
    )


def test_text_after_closing_quote_is_a_csv_error() -> None:
    assert _error('"target=/x"y') == (
        "failed to parse csv mounts: parse error on line 1, column 11: "
        'extraneous or missing " in quoted-field'
    )


# -- the parse-time check -----------------------------------------------------


def test_mount_from_returns_the_stage_as_written() -> None:
    assert mount_from("type=cache,FROM=Build,target=/x") == "Build"
    assert mount_from("type=tmpfs,target=/x") == ""


def test_mount_from_refuses_variables() -> None:
    with pytest.raises(MountError, match="'from' doesn't support variable expansion"):
        mount_from("from=${STAGE}")


def test_mount_from_allows_a_trailing_dollar() -> None:
    assert mount_from("from=odd$") == "odd$"


def test_mount_from_ignores_other_option_errors() -> None:
    assert mount_from("type=nonsense,colour=blue,from=x") == "x"


def test_mount_from_reports_csv_errors() -> None:
    with pytest.raises(MountError, match="failed to parse csv mounts"):
        mount_from('a"b')


# -- helpers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [("100", 100), ("1k", 1024), ("1.5K", 1536), ("2MiB", 2 << 20), ("1 GB", 1 << 30), ("7b", 7)],
)
def test_ram_sizes(text: str, size: int) -> None:
    assert parse_ram_size(text) == size


@pytest.mark.parametrize("text", ["", "m", "1x", "1kbb", "-1m", "1mb2"])
def test_bad_ram_sizes(text: str) -> None:
    with pytest.raises(ValueError):
        parse_ram_size(text)


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [("", "."), ("/a/../..", "/"), ("a/./b/", "a/b"), ("../x", "../x"), ("//a//b", "/a/b")],
)
def test_clean_path_like_go(path: str, cleaned: str) -> None:
    assert clean_path(path) == cleaned


@pytest.mark.parametrize(("path", "base"), [("", "."), ("/", "/"), ("/a/b/", "b"), ("c", "c")])
def test_base_name_like_go(path: str, base: str) -> None:
    assert base_name(path) == base


def test_split_csv_unescapes_doubled_quotes() -> None:
    assert split_csv('"a ""b""",c') == ['a "b"', "c"]
