"""Talking to the upstream simple index (PyPI by default).

Asks for PEP 691 JSON, accepts HTML. A page is read whole but bounded in size
(MAX_UPSTREAM_PAGE) and time (PAGE_DEADLINE), and identified by a digest of
its bytes, so the mirror can tell an unchanged page without parsing it, whatever
validators upstream sends. JSON is decoded by msgspec straight into typed
records (ten times faster than pypi-simple on a 5,000-file page, and it checks
every field's type); HTML is parsed by pypi-simple. Every failure becomes
UpstreamError or UpstreamNotFound; a circuit breaker makes a failing upstream
fail fast.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import msgspec
import urllib3

from havarti import __version__
from havarti import metrics as prom
from havarti.distributions import SDIST_SUFFIXES, dist_version
from havarti.errors import UpstreamError, UpstreamNotFound
from havarti.metrics import observe_upstream_hooks
from havarti.records import JSON_TYPE, PageFile
from havarti.upstream.breaker import CircuitBreaker
from havarti.upstream.origins import MAX_REDIRECTS, Origins, RefusedURL

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/vnd.pypi.simple.v1+html")
ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
PAGE_CHUNK = 256 * 1024
USER_AGENT = f"havarti/{__version__} (caching proxy; +self-hosted)"
#: httpx's is_redirect counts a 304 too.
REDIRECTS = (301, 302, 303, 307, 308)


class _JsonMeta(msgspec.Struct, rename="kebab"):
    api_version: str


class _JsonFile(msgspec.Struct, rename="kebab"):
    """A file entry of a PEP 691 page (PEP 592, 658/714, 700 fields)."""

    filename: str
    url: str
    hashes: dict[str, str] = {}
    requires_python: str | None = None
    yanked: bool | str = False
    core_metadata: bool | dict[str, str] | None = None
    data_dist_info_metadata: bool | dict[str, str] | None = None
    size: int | None = None
    upload_time: str | None = None


class _JsonPage(msgspec.Struct):
    meta: _JsonMeta
    files: list[_JsonFile]
    versions: list[str] | None = None


_page_decoder = msgspec.json.Decoder(_JsonPage)
#: A filename Havarti will put in a URL and a storage key: no paths, no controls.
_SAFE_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!~-]{0,250}")


@dataclass(frozen=True)
class ParsedPage:
    """A page's distribution files, and its PEP 700 ``versions`` when upstream lists them."""

    files: list[PageFile]
    versions: list[str] | None = None


@dataclass(frozen=True)
class PageResponse:
    """Upstream's answer for a project page: a 304, or a 200 with its bytes and their digest."""

    not_modified: bool
    etag: str | None
    last_modified: str | None
    body: bytes = b""
    content_type: str = ""
    url: str = ""
    #: sha256 of the content type and body: the page's identity, whatever validators upstream sends.
    digest: str = ""


#: The default UPSTREAM_MIN_RATE, bytes per second: a 2 GB file may take 11 hours.
DEFAULT_MIN_RATE = 50_000


class UpstreamClient:
    def __init__(self, index_url: str, timeout: float, max_page_size: int = 50 * 2**20,
                 page_deadline: float = 30.0, breaker: CircuitBreaker | None = None, *,
                 file_hosts: Iterable[str] | None = None,
                 min_rate: int = DEFAULT_MIN_RATE) -> None:
        self.index_url = index_url.rstrip("/") + "/"
        self.timeout = timeout
        #: Where files, .metadata and the JSON API may be fetched from (each redirect hop too).
        self.origins = Origins(self.index_url, file_hosts)
        self.min_rate = min_rate
        self.max_page_size = max_page_size
        self.page_deadline = page_deadline
        self.breaker = breaker or CircuitBreaker(0, 0)
        # Pages go through urllib3: a revalidation costs half of what it costs through httpx
        # (measured: about 325 µs against 650 µs of CPU for a 304), and it is the hot path.
        self.pages = urllib3.PoolManager(num_pools=4, maxsize=32, block=False)
        self._page_timeout = urllib3.Timeout(connect=min(timeout, 10.0), read=timeout)
        self._http: httpx.Client | None = None
        self._http_guard = threading.Lock()

    @property
    def http(self) -> httpx.Client:
        """The client for files and the JSON API, made on first use (its TLS setup costs ~0.1 s)."""
        if self._http is None:
            with self._http_guard:
                if self._http is None:
                    self._http = httpx.Client(
                        timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                        headers={"User-Agent": USER_AGENT},
                        follow_redirects=True,
                        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                        event_hooks=observe_upstream_hooks(),
                    )
        return self._http

    def project_url(self, name: str) -> str:
        return urljoin(self.index_url, f"{name}/")

    def fetch_project(self, name: str, etag: str | None = None,
                      last_modified: str | None = None) -> PageResponse:
        """GET the project's page, conditionally when validators are given.

        Raises UpstreamNotFound on a 404, UpstreamError on anything else that is
        not a 200 or 304, past PAGE_DEADLINE, or past MAX_UPSTREAM_PAGE bytes.
        """
        self.breaker.before()
        try:
            result = self._get_page(name, etag, last_modified)
        except UpstreamError:
            self.breaker.failure()
            raise
        self.breaker.success()
        return result

    def _get_page(self, name: str, etag: str | None, last_modified: str | None) -> PageResponse:
        headers = {"Accept": ACCEPT, "Accept-Encoding": "gzip", "User-Agent": USER_AGENT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        url = self.project_url(name)
        started = time.monotonic()
        deadline = started + self.page_deadline
        try:
            for _ in range(MAX_REDIRECTS + 1):
                response = self.pages.request("GET", url, headers=headers, redirect=False,
                                              retries=False, preload_content=False,
                                              timeout=self._page_timeout)
                try:
                    prom.metrics().upstream_seconds.labels("page").observe(
                        time.monotonic() - started)
                    if response.status in REDIRECTS:
                        url = self._same_origin(url, response.headers.get("Location", ""), name)
                        continue
                    if response.status == 304:
                        return PageResponse(True, etag, last_modified)
                    if response.status == 404:
                        raise UpstreamNotFound(f"no project {name!r} upstream")
                    if response.status != 200:
                        raise UpstreamError(f"upstream answered {response.status} for {name}")
                    return self._read_page(name, url, response, deadline)
                finally:
                    _release(response)
            raise UpstreamError(f"upstream redirected {name} more than {MAX_REDIRECTS} times")
        except urllib3.exceptions.NewConnectionError as exc:
            # A refused connection, not a timeout (urllib3 files it under both).
            raise UpstreamError(f"upstream unreachable for {name}: {_reason(exc)}") from None
        except urllib3.exceptions.TimeoutError as exc:
            raise UpstreamError(f"upstream timed out for {name} ({type(exc).__name__})",
                                timeout=True) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise UpstreamError(f"upstream unreachable for {name}: {_reason(exc)}") from None

    def _same_origin(self, url: str, location: str, name: str) -> str:
        # A page may move within the index (a 301 to the normalised name), never to another host.
        target = urljoin(url, location)
        if urlsplit(target)[:2] != urlsplit(self.index_url)[:2]:
            raise UpstreamError(f"upstream redirected {name} to another host; refused")
        return target

    def _read_page(self, name: str, url: str, response: urllib3.BaseHTTPResponse,
                   deadline: float) -> PageResponse:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_page_size:
            raise UpstreamError(f"upstream page for {name} is larger than MAX_UPSTREAM_PAGE "
                                f"({self.max_page_size} bytes); refused")
        content_type = response.headers.get("Content-Type", "text/html").split(";")[0].strip()
        body = bytearray()
        # Counted after decompression, so a gzip bomb stops at the same bound. read1: what
        # has arrived, so a page dribbled a byte at a time still meets the deadline check.
        while chunk := response.read1(PAGE_CHUNK, decode_content=True):
            body += chunk
            if len(body) > self.max_page_size:
                raise UpstreamError(f"upstream page for {name} is larger than MAX_UPSTREAM_PAGE "
                                    f"({self.max_page_size} bytes); refused")
            if time.monotonic() > deadline:
                raise UpstreamError(f"upstream took longer than {self.page_deadline:.0f} s to "
                                    f"send the page for {name}", timeout=True)
        digest = hashlib.sha256(content_type.encode() + b"\n")
        digest.update(body)
        return PageResponse(False, response.headers.get("ETag"),
                            response.headers.get("Last-Modified"), bytes(body), content_type,
                            url, digest.hexdigest())

    def parse(self, name: str, page: PageResponse) -> ParsedPage:
        """The distribution files of a fetched page; entries not of project ``name`` are dropped."""
        try:
            if page.content_type == JSON_TYPE:
                return self._parse_json(name, page)
            if page.content_type in HTML_TYPES:
                return ParsedPage(_own_files(name, self._parse_html(name, page)))
            raise ValueError(f"unsupported content type {page.content_type!r}")
        except (ValueError, KeyError, TypeError, msgspec.DecodeError) as exc:
            raise UpstreamError(f"upstream sent an unreadable page for {name}: "
                                f"{str(exc).splitlines()[0][:200]}") from None

    def _parse_json(self, name: str, page: PageResponse) -> ParsedPage:
        document = _page_decoder.decode(page.body)
        if not document.meta.api_version.startswith("1."):
            raise ValueError(f"repository version {document.meta.api_version}, not 1.x")
        files = []
        dropped = []
        resolve = _UrlResolver(page.url)
        for f in document.files:
            version = (dist_version(f.filename, name) if _SAFE_FILENAME.fullmatch(f.filename)
                       else None)
            if version is None:
                dropped.append(f.filename)
                continue
            core = f.core_metadata if f.core_metadata is not None else f.data_dist_info_metadata
            files.append(PageFile(
                filename=f.filename, url=resolve(f.url), hashes=f.hashes, version=version,
                requires_python=f.requires_python or None,
                # PEP 691: a yank reason is a string; an empty one is a yank without reason.
                yanked=f.yanked, core_metadata=core or False, size=f.size,
                upload_time=f.upload_time))
        _log_dropped(name, dropped)
        return ParsedPage(files, document.versions)

    def _parse_html(self, name: str, page: PageResponse) -> list[PageFile]:
        # pypi-simple (with BeautifulSoup, ~20 MB) loads only where an HTML page is parsed.
        from pypi_simple import ProjectPage as SimplePage
        from pypi_simple.errors import UnsupportedRepoVersionError

        try:
            simple = SimplePage.from_html(name, page.body, page.url, None)
        except UnsupportedRepoVersionError as exc:
            raise ValueError(str(exc)) from None
        files = []
        for pkg in simple.packages:
            core: bool | dict[str, str] = False
            if pkg.has_metadata:
                core = dict(pkg.metadata_digests) if pkg.metadata_digests else True
            files.append(PageFile(
                filename=pkg.filename, url=_strip_fragment(pkg.url), hashes=dict(pkg.digests),
                requires_python=pkg.requires_python,
                yanked=(pkg.yanked_reason or "") if pkg.is_yanked else False,
                core_metadata=core, size=pkg.size,
                upload_time=pkg.upload_time.isoformat() if pkg.upload_time else None))
        return files

    @contextmanager
    def stream(self, url: str, limit: int | None = None) -> Iterator[FileStream]:
        """Stream an upstream file; raises UpstreamError unless upstream answers 200.

        The URL and every redirect hop must pass ``origins`` (RefusedURL otherwise).
        Reading is bounded: ``limit`` bytes at most, and at least UPSTREAM_MIN_RATE
        bytes a second over every UPSTREAM_TIMEOUT seconds.
        """
        try:
            response = self._open(url)
            try:
                if response.status_code == 404:
                    raise UpstreamNotFound(f"upstream has no {url.rsplit('/', 1)[-1]}")
                if response.status_code != 200:
                    raise UpstreamError(f"upstream answered {response.status_code} for a file")
                yield FileStream(response, limit, self.min_rate, self.timeout)
            finally:
                response.close()
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"upstream timed out ({type(exc).__name__})", timeout=True) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream failed: {exc}") from None

    def _open(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """GET ``url`` (streamed), following redirects by hand: each hop is checked by
        ``origins`` before it is asked. The caller closes the response."""
        request = self.http.build_request("GET", self.origins.check(url), headers=headers)
        for _ in range(MAX_REDIRECTS + 1):
            response = self.http.send(request, stream=True, follow_redirects=False)
            following = response.next_request
            if following is None:
                return response
            response.close()
            self.origins.check(str(following.url))
            request = following
        raise RefusedURL(f"upstream file URL refused: more than {MAX_REDIRECTS} redirects")

    def check_file_url(self, url: str) -> None:
        """Raise RefusedURL unless Havarti may send a client to (or fetch) ``url``."""
        self.origins.check(url)

    def get_bytes(self, url: str, limit: int = 50 * 2**20) -> bytes:
        """A whole (small) upstream response; raises UpstreamError past ``limit`` bytes."""
        with self.stream(url, limit) as response:
            return b"".join(response.chunks(decoded=True))

    def json_api_url(self, path: str) -> str:
        """The PyPI JSON API beside the simple index (``/simple/`` → ``/pypi/...``)."""
        parts = urlsplit(self.index_url)
        root = parts.path.rstrip("/")
        if root.endswith("/simple"):
            root = root[: -len("/simple")]
        return urlunsplit((parts.scheme, parts.netloc, f"{root}/pypi/{path}", "", ""))

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
        self.pages.clear()


def _strip_fragment(url: str) -> str:
    return url.split("#", 1)[0] if "#" in url else url


def _own_files(name: str, files: list[PageFile]) -> list[PageFile]:
    """The entries that are distributions of ``name``, each with its version."""
    own = []
    dropped = []
    for f in files:
        version = dist_version(f.filename, name) if _SAFE_FILENAME.fullmatch(f.filename) else None
        if version is None:
            dropped.append(f.filename)
            continue
        own.append(msgspec.structs.replace(f, version=version))
    _log_dropped(name, dropped)
    return own


class FileStream:
    """An upstream file's body, read with bounds on its size and on how slowly it may come."""

    def __init__(self, response: httpx.Response, limit: int | None, min_rate: int,
                 window: float) -> None:
        self.response = response
        self.limit = limit
        self.min_rate = min_rate
        self.window = window

    def chunks(self, decoded: bool = False) -> Iterator[bytes]:
        """The body as the network delivers it (raw bytes; ``decoded``: Content-Encoding undone).

        Raises UpstreamError past ``limit`` bytes, or when a window of UPSTREAM_TIMEOUT
        seconds brings fewer than UPSTREAM_MIN_RATE bytes a second: a stream that dribbles
        a byte at a time never trips the per-read timeout, so it is bounded here.
        """
        received = 0
        window_start, window_bytes = time.monotonic(), 0
        source = self.response.iter_bytes() if decoded else self.response.iter_raw()
        for chunk in source:
            received += len(chunk)
            if self.limit is not None and received > self.limit:
                raise UpstreamError(f"upstream sent more than {self.limit} bytes")
            window_bytes += len(chunk)
            elapsed = time.monotonic() - window_start
            if elapsed >= self.window:
                if window_bytes < self.min_rate * elapsed:
                    raise UpstreamError(
                        f"upstream too slow: {window_bytes} bytes in {elapsed:.1f} s, under "
                        f"UPSTREAM_MIN_RATE ({self.min_rate} bytes/s)", timeout=True)
                window_start, window_bytes = time.monotonic(), 0
            yield chunk


def _log_dropped(project: str, filenames: list[str]) -> None:
    """One line per page for the entries dropped because they name another project.

    A page may list a file of another project (``victim-1.0-...whl`` on ``evilproj``'s
    page): served under this project it would poison that filename's cache. Old
    installers (``.exe``, ``.egg``, ``.msi``) are dropped too, but quietly: no client
    of a simple index installs them, and big projects list dozens.
    """
    foreign = [f for f in filenames if f.endswith((".whl", *SDIST_SUFFIXES))]
    if not foreign:
        return
    shown = ", ".join(repr(f[:100]) for f in foreign[:5])
    more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
    log.warning("upstream-files-dropped project=%s count=%d reason=filename names another "
                "project or is no wheel/sdist name files=%s%s", project, len(foreign), shown, more)


class _UrlResolver:
    """Absolute file URLs for a page, joining each relative directory once, not per file."""

    def __init__(self, page_url: str) -> None:
        self.page_url = page_url
        self._dirs: dict[str, str] = {}

    def __call__(self, url: str) -> str:
        url = _strip_fragment(url)
        if url.startswith(("https://", "http://")):
            return url
        directory, _, name = url.rpartition("/")
        if "?" in url or name in ("", ".", ".."):
            return urljoin(self.page_url, url)
        base = self._dirs.get(directory)
        if base is None:
            base = self._dirs[directory] = urljoin(self.page_url, directory + "/" if directory else "./")
        return base + name


def _reason(exc: BaseException) -> str:
    """One line for a connection error: urllib3's own text repeats the pool and the URL."""
    reason = getattr(exc, "reason", None) or exc
    return str(reason).splitlines()[0][:200] if str(reason) else type(reason).__name__


def _release(response: urllib3.BaseHTTPResponse) -> None:
    """Back to the pool when its body was read to the end; else closed.

    Reading out what is left (an error page, a refused answer) could mean waiting on
    an upstream that dribbles it: a new connection later costs less.
    """
    if response.length_remaining == 0:
        response.release_conn()
    else:
        response.close()
