"""URLs read the way Go's net/url reads them, because BuildKit decides with them.

Whether an ADD source is a git repository, a download or a context path, and which file
name a download gets, hangs on Go's `url.Parse` succeeding and on what it decodes
(dfgitutil.ParseGitRef, gitutil.ParseURL, convert_copy.go `isHTTPSource`). Python's
urlsplit accepts and rejects different strings (and raises ValueError on some), so the
planner uses this reading instead: `parse_go_url` returns None exactly where Go's Parse
returns an error, and the fields hold what Go's would.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum


class _Part(Enum):
    """Which URL part a byte belongs to; each part lets different bytes stand unescaped."""

    PATH = "path"
    HOST = "host"
    ZONE = "zone"
    USER_PASSWORD = "user_password"
    QUERY_COMPONENT = "query_component"
    FRAGMENT = "fragment"


_HEX = frozenset(b"0123456789abcdefABCDEF")
_SUB_DELIMS_IN_HOST = frozenset(b"!$&'()*+,;=:[]<>\"")
_RESERVED = frozenset(b"$&+,/:;=?@")


def _should_escape(byte: int, part: _Part) -> bool:
    """Go's shouldEscape: whether `byte` must be %-escaped in `part`."""
    char = chr(byte)
    if char.isascii() and char.isalnum():
        return False
    if part in (_Part.HOST, _Part.ZONE) and byte in _SUB_DELIMS_IN_HOST:
        return False
    if char in "-_.~":
        return False
    if byte in _RESERVED:
        if part is _Part.PATH:
            return char == "?"
        if part is _Part.USER_PASSWORD:
            return char in "@/?:"
        if part is _Part.QUERY_COMPONENT:
            return True
        if part is _Part.FRAGMENT:
            return False
    # The fragment alone also leaves a few sub-delims alone.
    return not (part is _Part.FRAGMENT and char in "!()*")


def _unescape(text: str, part: _Part) -> str | None:
    """Go's unescape: the decoded text, or None where Go reports an escape/host error."""
    raw = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    while i < len(raw):
        byte = raw[i]
        if byte == ord("%"):
            if i + 2 >= len(raw) or raw[i + 1] not in _HEX or raw[i + 2] not in _HEX:
                return None
            value = int(raw[i + 1 : i + 3], 16)
            escape = raw[i : i + 3]
            # A host may %-encode only non-ASCII bytes (and %25 for IPv6 zones).
            if part is _Part.HOST and value < 0x80 and escape != b"%25":
                return None
            if (
                part is _Part.ZONE
                and escape != b"%25"
                and value != ord(" ")
                and _should_escape(value, _Part.HOST)
            ):
                return None
            out.append(value)
            i += 3
            continue
        if byte == ord("+") and part is _Part.QUERY_COMPONENT:
            out.append(ord(" "))
        elif part in (_Part.HOST, _Part.ZONE) and byte < 0x80 and _should_escape(byte, part):
            return None
        else:
            out.append(byte)
        i += 1
    # Go keeps the raw bytes; a Python string cannot hold invalid UTF-8 that later has to
    # be encoded again (op digests), so such bytes read as U+FFFD.
    return out.decode("utf-8", "replace")


def _escape(text: str, part: _Part) -> str:
    """Go's escape: every byte `part` does not allow written as %XX (upper-case hex)."""
    out: list[str] = []
    for byte in text.encode("utf-8", "surrogateescape"):
        if _should_escape(byte, part):
            out.append(f"%{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def _valid_encoded(text: str, part: _Part) -> bool:
    """Go's validEncoded: `text` needs no further escaping to stand in `part`."""
    for byte in text.encode("utf-8", "surrogateescape"):
        if chr(byte) in "!$&'()*+,;=:@[]%":
            continue
        if _should_escape(byte, part):
            return False
    return True


def _valid_optional_port(port: str) -> bool:
    return port == "" or (port[0] == ":" and all("0" <= c <= "9" for c in port[1:]))


def _valid_userinfo(text: str) -> bool:
    return all((c.isascii() and c.isalnum()) or c in "-._:~!$&'()*+,;=%@" for c in text)


def _parse_host(scheme: str, host: str) -> str | None:
    """Go's parseHost: the decoded `host[:port]`, or None when Go rejects it."""
    bracket = host.rfind("[")
    if bracket > 0:
        return None  # invalid IP-literal
    if bracket == 0:
        close = host.rfind("]")
        if close < 0:
            return None
        colon_port = host[close + 1 :]
        if not _valid_optional_port(colon_port):
            return None
        name = host[1:close]
        zone = name.find("%25")
        if zone >= 0:
            head = _unescape(name[:zone], _Part.HOST)
            tail = _unescape(name[zone:], _Part.ZONE)
            decoded = None if head is None or tail is None else head + tail
        else:
            decoded = _unescape(name, _Part.HOST)
        if decoded is None:
            return None
        try:
            address = ipaddress.ip_address(decoded)
        except ValueError:
            return None
        if isinstance(address, ipaddress.IPv4Address):
            return None
        return f"[{decoded}]{colon_port}"
    first = host.find(":")
    if first != -1:
        last = host.rfind(":")
        # Go insists on a single colon in http(s) hosts only (go.dev/issue/75223).
        start = first if scheme in ("http", "https") else last
        if not _valid_optional_port(host[start:]):
            return None
    return _unescape(host, _Part.HOST)


def _scheme_of(raw: str) -> tuple[str, str] | None:
    """Go's getScheme: (scheme, rest); None for `:` at the very start."""
    for i, char in enumerate(raw):
        if char.isascii() and char.isalpha():
            continue
        if char.isascii() and (char.isdigit() or char in "+-."):
            if i == 0:
                return "", raw
            continue
        if char == ":":
            if i == 0:
                return None
            return raw[:i], raw[i + 1 :]
        return "", raw
    return "", raw


@dataclass(frozen=True)
class GoURL:
    """The fields of Go's url.URL that BuildKit's source handling reads."""

    scheme: str
    opaque: str = ""
    user: str | None = None  # userinfo as written
    host: str = ""
    path: str = ""  # decoded
    raw_path: str = ""  # as written
    raw_query: str = ""
    force_query: bool = False
    fragment: str = ""  # decoded
    omit_host: bool = False

    def escaped_path(self) -> str:
        """Go's EscapedPath: the path as written when that is a valid encoding of it."""
        if (
            self.raw_path
            and _valid_encoded(self.raw_path, _Part.PATH)
            and _unescape(self.raw_path, _Part.PATH) == self.path
        ):
            return self.raw_path
        return _escape(self.path, _Part.PATH)

    def without_options(self) -> str:
        """Go's String() with query and fragment cleared (gitutil.FromURL `Remote`)."""
        text = f"{self.scheme}:" if self.scheme else ""
        if self.opaque:
            return text + self.opaque + ("?" if self.force_query else "")
        has_authority = self.scheme or self.host or self.user is not None
        if has_authority and not (self.omit_host and not self.host and self.user is None):
            if self.host or self.path or self.user is not None:
                text += "//"
            if self.user is not None:
                text += _userinfo_string(self.user) + "@"
            if self.host:
                text += _escape(self.host, _Part.HOST)
        path = self.escaped_path()
        if self.omit_host and not self.host and self.user is None and path.startswith("//"):
            text += "%2F"
            path = path[1:]
        if path and not path.startswith("/") and self.host:
            text += "/"
        if not text and ":" in path.split("/", 1)[0]:
            text += "./"
        text += path
        if self.force_query:
            text += "?"
        return text

    def query(self) -> dict[str, list[str]]:
        """Go's URL.Query(): the parsable pairs of the raw query, malformed ones dropped."""
        return parse_go_query(self.raw_query)[0]


def _userinfo_string(raw: str) -> str:
    name, colon, password = raw.partition(":")
    decoded_name = _unescape(name, _Part.USER_PASSWORD) or ""
    text = _escape(decoded_name, _Part.USER_PASSWORD)
    if colon:
        decoded_password = _unescape(password, _Part.USER_PASSWORD) or ""
        text += ":" + _escape(decoded_password, _Part.USER_PASSWORD)
    return text


def parse_go_query(query: str) -> tuple[dict[str, list[str]], bool]:
    """Go's url.ParseQuery: the values and whether every pair parsed.

    A pair with `;` or a bad %-escape is skipped (Go reports an error but keeps the rest).
    """
    values: dict[str, list[str]] = {}
    ok = True
    for pair in query.split("&"):
        if ";" in pair:
            ok = False
            continue
        if pair == "":
            continue
        raw_key, _, raw_value = pair.partition("=")
        key = _unescape(raw_key, _Part.QUERY_COMPONENT)
        value = _unescape(raw_value, _Part.QUERY_COMPONENT)
        if key is None or value is None:
            ok = False
            continue
        values.setdefault(key, []).append(value)
    return values, ok


def parse_go_url(raw: str) -> GoURL | None:
    """Go's url.Parse(raw), or None where Go returns an error."""
    head, has_fragment, raw_fragment = raw.partition("#")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in head):
        return None  # the fragment is not checked for control characters
    if head == "*":
        parsed = GoURL(scheme="", path="*", raw_path="*")
        return _with_fragment(parsed, raw_fragment) if has_fragment else parsed
    found = _scheme_of(head)
    if found is None:
        return None
    scheme, rest = found[0].lower(), found[1]
    force_query = False
    raw_query = ""
    if rest.endswith("?") and rest.count("?") == 1:
        force_query = True
        rest = rest[:-1]
    else:
        rest, _, raw_query = rest.partition("?")
    if not rest.startswith("/"):
        if scheme:
            parsed = GoURL(scheme=scheme, opaque=rest, raw_query=raw_query, force_query=force_query)
            return _with_fragment(parsed, raw_fragment) if has_fragment else parsed
        if ":" in rest.split("/", 1)[0]:
            return None  # first path segment in URL cannot contain colon
    user: str | None = None
    host = ""
    omit_host = False
    if (scheme or not rest.startswith("///")) and rest.startswith("//"):
        authority, slash, tail = rest[2:].partition("/")
        rest = slash + tail
        at = authority.rfind("@")
        decoded_host = _parse_host(scheme, authority[at + 1 :])
        if decoded_host is None:
            return None
        host = decoded_host
        if at >= 0:
            user = authority[:at]
            if not _valid_userinfo(user):
                return None
            if any(_unescape(part, _Part.USER_PASSWORD) is None for part in user.split(":", 1)):
                return None
    elif scheme and rest.startswith("/"):
        omit_host = True
    path = _unescape(rest, _Part.PATH)
    if path is None:
        return None
    parsed = GoURL(
        scheme=scheme,
        user=user,
        host=host,
        path=path,
        raw_path=rest,
        raw_query=raw_query,
        force_query=force_query,
        omit_host=omit_host,
    )
    return _with_fragment(parsed, raw_fragment) if has_fragment else parsed


def _with_fragment(parsed: GoURL, raw_fragment: str) -> GoURL | None:
    fragment = _unescape(raw_fragment, _Part.FRAGMENT)
    if fragment is None:
        return None
    return GoURL(
        scheme=parsed.scheme,
        opaque=parsed.opaque,
        user=parsed.user,
        host=parsed.host,
        path=parsed.path,
        raw_path=parsed.raw_path,
        raw_query=parsed.raw_query,
        force_query=parsed.force_query,
        fragment=fragment,
        omit_host=parsed.omit_host,
    )
