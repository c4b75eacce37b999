"""Where Havarti may fetch upstream files from: a guard against server-side request forgery.

An upstream page names each file's URL, and upstream may redirect anywhere. Left
alone, a hostile (or compromised) upstream could make Havarti fetch
``http://127.0.0.1:5432/`` or a cloud metadata service and hand the answer to
whoever asked. So a file (or ``.metadata``) URL, and every redirect hop, must be

- ``http`` or ``https``;
- on an allowed origin: the upstream's own host and port, or a host in
  ``UPSTREAM_FILE_HOSTS`` (``host`` means its scheme's default port,
  ``host:port`` that port; ``*`` means any host). By default that is the
  upstream's host, plus PyPI's file host when the upstream is PyPI;
- not at a loopback, link-local, private or otherwise non-public address,
  unless the upstream itself is at such an address (an upstream on the same
  host or private network): an allowed host name may not resolve somewhere
  internal either.

PyPI's file host, like every registry host, is not named in this repository: it
is recognised by the SHA-256 of its name (``PYPI_FILE_HOST_SHA256``), which is
exactly as strict as comparing names, needs no network and no extra dependency.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
from collections.abc import Iterable
from typing import NoReturn
from urllib.parse import urlsplit, urlunsplit

import httpx

from havarti.config import ANY_HOST, PYPI_SIMPLE_ENDPOINT
from havarti.errors import UpstreamError

log = logging.getLogger(__name__)

#: SHA-256 of the name of the host PyPI serves its files from (its "file storage domain").
PYPI_FILE_HOST_SHA256 = "c899567ee906851741bf7f3bde17a33777859ff9f53ff54d6f0ea54cf31ad636"
DEFAULT_PORTS = {"http": 80, "https": 443}
#: Redirects followed per file request, each one checked.
MAX_REDIRECTS = 5


class RefusedURL(UpstreamError):
    """An upstream file URL (or a redirect) points somewhere Havarti does not fetch from."""


def metadata_url(file_url: str) -> str:
    """The PEP 658 metadata URL of a file: its URL with ``.metadata`` appended to the *path*.

    Never appended to the whole string: a query (a signed URL) stays a query.
    """
    parts = urlsplit(file_url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path + ".metadata", parts.query, ""))


def address_kind(address: str) -> str:
    """``public``, ``loopback``, ``link-local``, ``private`` or ``other`` (reserved, multicast...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast or ip.is_reserved or ip.is_unspecified:
        return "other"
    if ip.is_global:
        return "public"
    if ip.is_private:
        return "private"
    return "other"


class Origins:
    """The file-URL rule for one upstream; ``check`` refuses with a one-line reason."""

    def __init__(self, index_url: str, file_hosts: Iterable[str] | None = None,
                 resolve: bool = True) -> None:
        index = httpx.URL(index_url)
        self.index_host = index.host
        self.index_port = _port(index)
        self.explicit = file_hosts is not None
        self.hosts = frozenset(file_hosts) if file_hosts is not None else frozenset()
        #: PyPI's file host is allowed by default when the upstream is PyPI.
        self.pypi_files = file_hosts is None and index_url.rstrip("/") == \
            PYPI_SIMPLE_ENDPOINT.rstrip("/")
        self.any_host = ANY_HOST in self.hosts
        self.resolve = resolve
        self._index_kinds: frozenset[str] | None = None

    def describe(self) -> str:
        if self.any_host:
            return "any host"
        names = [f"{self.index_host}:{self.index_port}"] + sorted(self.hosts)
        if self.pypi_files:
            names.append("PyPI's file host")
        return ", ".join(names)

    def check(self, url: str) -> httpx.URL:
        """The parsed URL when Havarti may fetch it; raises RefusedURL (and logs) otherwise."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            self._refuse(url, f"not a URL: {exc}")
        reason = self._why_not(parsed)
        if reason:
            self._refuse(url, reason)
        return parsed

    def _refuse(self, url: str, reason: str) -> NoReturn:
        log.warning("upstream-url-refused url=%r reason=%s", str(url)[:500], reason)
        raise RefusedURL(f"upstream file URL refused: {reason}")

    def _why_not(self, url: httpx.URL) -> str | None:
        if url.scheme not in DEFAULT_PORTS:
            return f"scheme {url.scheme!r} is not http or https"
        host, port = url.host, _port(url)
        if not host:
            return "no host"
        if host == self.index_host and port == self.index_port:
            return None  # the upstream itself
        if not (self.any_host or self._listed(host, port, url.scheme)):
            return (f"{host}:{port} is not the upstream's host nor in UPSTREAM_FILE_HOSTS "
                    f"(allowed: {self.describe()})")
        return self._address_problem(host, port)

    def _listed(self, host: str, port: int, scheme: str) -> bool:
        if f"{host}:{port}" in self.hosts:
            return True
        default = port == DEFAULT_PORTS[scheme]
        if default and host in self.hosts:
            return True
        return (default and self.pypi_files
                and hashlib.sha256(host.encode()).hexdigest() == PYPI_FILE_HOST_SHA256)

    def _address_problem(self, host: str, port: int) -> str | None:
        """Why ``host`` may not be reached: it is (or resolves to) an internal address."""
        allowed = self.index_kinds() | {"public"}
        for address in self._addresses(host, port):
            kind = address_kind(address)
            if kind not in allowed:
                return (f"{host} is at a {kind} address ({address}) and the upstream is not: "
                        "Havarti fetches nothing internal for an upstream page")
        return None

    def _addresses(self, host: str, port: int) -> list[str]:
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        if not self.resolve:
            return []
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise UpstreamError(f"cannot resolve {host}: {exc}") from None
        return sorted({str(info[4][0]) for info in infos})

    def index_kinds(self) -> frozenset[str]:
        """The kinds of address the upstream itself is at (resolved once)."""
        kinds = self._index_kinds
        if kinds is None:
            try:
                kinds = frozenset(address_kind(a) for a in
                                  self._addresses(self.index_host, self.index_port))
            except UpstreamError:
                return frozenset()  # asked again next time: DNS may be back
            self._index_kinds = kinds
        return kinds


def _port(url: httpx.URL) -> int:
    return url.port if url.port is not None else DEFAULT_PORTS.get(url.scheme, 0)
