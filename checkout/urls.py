"""Web URLs read as a browser reads them (the WHATWG URL Standard, through ada-url).

Every URL we accept from a shop or a configuration (`return_url`, `cancel_url`, a pay link's
`return_url`, `webhook_url`, `allowed_origins`) goes through `parse_web_url` before it is
compared, stored or rendered. Python's `urlsplit` and a browser disagree on many inputs
(`https://evil.example\\@shop.example/` is shop.example to `urlsplit`, evil.example to a
browser), so we never decide on `urlsplit`'s reading: the origin we check is the browser's,
and what we store and render is the parser's own serialisation (`href`), which every
WHATWG parser reads back the same way.

Refused outright, before parsing, because browsers repair them silently and parsers differ
on how: backslashes, control, blank and invisible characters anywhere (tabs and newlines are
dropped by browsers, so `https://sh<TAB>op.example` would be shop.example), and any
user-info (`user:pass@host`, a classic way to dress one host as another). Anything the
standard's parser rejects (a port that is not a number, an unclosed `[`, a forbidden host
code point) is refused with the reason. Hosts are IDNA-mapped and percent-decoded by the
parser (`https://%65vil.example/` is evil.example), so the origin check sees the real host.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import ada_url

MAX_URL_LENGTH = 2000
WEB_SCHEMES = ("http", "https")
# Unicode categories refused anywhere: controls, format (zero-width, bidi overrides), blanks.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zs", "Zl", "Zp", "Cs", "Co", "Cn"})


class UrlRefused(ValueError):
    """Not a URL we accept; `reason` completes "<field> ..." (e.g. "has a user name")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WebUrl:
    href: str  # the WHATWG serialisation: what we store, compare and render
    origin: str  # scheme://host[:port], the default port left out, as browsers compare them
    host: str  # ASCII (IDNA-mapped), without the port


def parse_web_url(text: object) -> WebUrl:
    """The URL `text` as a browser would visit it; raises UrlRefused saying why not."""
    if not isinstance(text, str):
        raise UrlRefused("must be a string")
    if not text:
        raise UrlRefused("is empty")
    if len(text) > MAX_URL_LENGTH:
        raise UrlRefused(f"is longer than {MAX_URL_LENGTH} characters")
    if "\\" in text:
        raise UrlRefused("contains a backslash (browsers read it as /)")
    if any(unicodedata.category(ch) in _REFUSED_CATEGORIES for ch in text):
        raise UrlRefused("contains a space, tab, newline, control or invisible character")
    scheme, sep, rest = text.partition(":")
    if not sep or scheme.lower() not in WEB_SCHEMES:
        raise UrlRefused("must be an http or https URL")
    authority = rest.lstrip("/").split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if "@" in authority:
        raise UrlRefused("must not contain a user name or password (user@host)")
    try:
        url = ada_url.URL(text)
    except ValueError:
        raise UrlRefused(_why_invalid(authority)) from None
    if url.username or url.password:  # already refused above; the parser has the last word
        raise UrlRefused("must not contain a user name or password (user@host)")
    if url.protocol[:-1] not in WEB_SCHEMES:
        raise UrlRefused("must be an http or https URL")
    if not url.hostname:
        raise UrlRefused("has no host")
    href = url.href
    if len(href) > MAX_URL_LENGTH:
        raise UrlRefused(f"is longer than {MAX_URL_LENGTH} characters")
    return WebUrl(href=href, origin=url.origin, host=url.hostname)


def _why_invalid(authority: str) -> str:
    """A reason for a URL the standard's parser refused, in a shop developer's words."""
    if authority.startswith("[") and "]" not in authority:
        return "is not a valid URL: its IPv6 address has no closing ]"
    port = authority.rsplit("]", 1)[-1].rpartition(":")
    if port[1] and not port[2].isdigit():
        return "is not a valid URL: its port must be a number from 0 to 65535"
    if port[1] and port[2].isdigit() and int(port[2]) > 65535:
        return "is not a valid URL: its port must be a number from 0 to 65535"
    if not authority:
        return "is not a valid URL: it has no host"
    return "is not a valid URL: its host is not a valid host name"


def origin_or_empty(text: object) -> str:
    """The browser's origin of `text`, or "" when it is not a web URL we accept."""
    try:
        return parse_web_url(text).origin
    except UrlRefused:
        return ""


def rendered_url(text: str | None) -> str | None:
    """A stored URL as it may go into a page or a redirect: re-serialised, or None when it
    no longer passes (a row stored before these rules)."""
    if not text:
        return None
    try:
        return parse_web_url(text).href
    except UrlRefused:
        return None
