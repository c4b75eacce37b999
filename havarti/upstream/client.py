"""Talking to the upstream simple index (PyPI by default).

Asks for PEP 691 JSON, accepts HTML; parses with pypi-simple; revalidates with
ETag / Last-Modified. Every failure becomes UpstreamError or UpstreamNotFound.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from havarti import __version__
from havarti.domain.pages import JSON_TYPE
from havarti.errors import UpstreamError, UpstreamNotFound
from havarti.metrics import observe_upstream_hooks

log = logging.getLogger(__name__)

ACCEPT = f"{JSON_TYPE}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"


@dataclass(frozen=True)
class UpstreamFile:
    """One file of an upstream project page, as stored (JSON) between requests."""

    filename: str
    url: str
    hashes: dict[str, str]
    version: str | None = None
    requires_python: str | None = None
    yanked: bool | str = False
    core_metadata: bool | dict[str, str] = False
    size: int | None = None
    upload_time: str | None = None

    @property
    def sha256(self) -> str | None:
        return self.hashes.get("sha256")

    @property
    def upload_datetime(self) -> datetime | None:
        if not self.upload_time:
            return None
        return datetime.fromisoformat(self.upload_time.replace("Z", "+00:00"))


def dump_files(files: list[UpstreamFile]) -> str:
    """The files as stored between requests (JSON); ``load_files`` reads them back."""
    # vars(), not asdict(): asdict deep-copies every field, ten times slower on a 5,000-file page.
    return json.dumps([vars(f) for f in files], separators=(",", ":"))


def load_files(data: str) -> list[UpstreamFile]:
    return [UpstreamFile(**item) for item in json.loads(data)]


@dataclass(frozen=True)
class UpstreamResult:
    """A 200 (``files`` set) or a 304 (``files`` None) from upstream."""

    files: list[UpstreamFile] | None
    etag: str | None
    last_modified: str | None


class UpstreamClient:
    def __init__(self, index_url: str, timeout: float) -> None:
        self.index_url = index_url.rstrip("/") + "/"
        self.timeout = timeout
        self.http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers={"User-Agent": f"havarti/{__version__} (caching proxy; +self-hosted)"},
            follow_redirects=True,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            event_hooks=observe_upstream_hooks(),
        )

    def project_url(self, name: str) -> str:
        return urljoin(self.index_url, f"{name}/")

    def fetch_project(self, name: str, etag: str | None = None,
                      last_modified: str | None = None) -> UpstreamResult:
        """GET the project's page, conditionally when validators are given."""
        headers = {"Accept": ACCEPT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        url = self.project_url(name)
        try:
            response = self.http.get(url, headers=headers)
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"upstream timed out for {name} ({type(exc).__name__})",
                                timeout=True) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream unreachable for {name}: {exc}") from None
        if response.status_code == 304:
            return UpstreamResult(None, etag, last_modified)
        if response.status_code == 404:
            raise UpstreamNotFound(f"no project {name!r} upstream")
        if response.status_code != 200:
            raise UpstreamError(f"upstream answered {response.status_code} for {name}")
        files = self._parse(name, response)
        return UpstreamResult(files, response.headers.get("ETag"),
                              response.headers.get("Last-Modified"))

    def _parse(self, name: str, response: httpx.Response) -> list[UpstreamFile]:
        # pypi-simple (with pydantic and BeautifulSoup, ~27 MB) only where a page is parsed.
        from pypi_simple import ProjectPage as SimplePage
        from pypi_simple.errors import UnsupportedContentTypeError, UnsupportedRepoVersionError

        content_type = response.headers.get("Content-Type", "text/html").split(";")[0].strip()
        try:
            if content_type == JSON_TYPE:
                page = SimplePage.from_json_data(response.json(), str(response.url))
            elif content_type in ("text/html", "application/vnd.pypi.simple.v1+html"):
                page = SimplePage.from_html(name, response.content, str(response.url),
                                            response.charset_encoding)
            else:
                raise UnsupportedContentTypeError(str(response.url), content_type)
        except (ValueError, KeyError, TypeError, UnsupportedContentTypeError,
                UnsupportedRepoVersionError) as exc:
            raise UpstreamError(f"upstream sent an unreadable page for {name}: {exc}") from None
        files = []
        for pkg in page.packages:
            if pkg.package_type is None and not pkg.filename.endswith((".whl", ".tar.gz", ".zip")):
                continue
            yanked: bool | str = (pkg.yanked_reason or "") if pkg.is_yanked else False
            core: bool | dict[str, str] = False
            if pkg.has_metadata:
                core = dict(pkg.metadata_digests) if pkg.metadata_digests else True
            files.append(UpstreamFile(
                filename=pkg.filename,
                url=_strip_fragment(pkg.url),
                hashes=dict(pkg.digests),
                version=pkg.version,
                requires_python=pkg.requires_python,
                yanked=yanked,
                core_metadata=core,
                size=pkg.size,
                upload_time=pkg.upload_time.isoformat() if pkg.upload_time else None,
            ))
        return files

    @contextmanager
    def stream(self, url: str) -> Iterator[httpx.Response]:
        """Stream a file; raises UpstreamError unless upstream answers 200."""
        try:
            with self.http.stream("GET", url) as response:
                if response.status_code == 404:
                    raise UpstreamNotFound(f"upstream has no {url.rsplit('/', 1)[-1]}")
                if response.status_code != 200:
                    raise UpstreamError(f"upstream answered {response.status_code} for a file")
                yield response
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"upstream timed out ({type(exc).__name__})", timeout=True) from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"upstream failed: {exc}") from None

    def get_bytes(self, url: str, limit: int = 50 * 2**20) -> bytes:
        """A whole (small) upstream response; raises UpstreamError past ``limit`` bytes."""
        with self.stream(url) as response:
            data = bytearray()
            for chunk in response.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise UpstreamError("upstream response too large")
            return bytes(data)

    def json_api_url(self, path: str) -> str:
        """The PyPI JSON API beside the simple index (``/simple/`` → ``/pypi/...``)."""
        parts = urlsplit(self.index_url)
        root = parts.path.rstrip("/")
        if root.endswith("/simple"):
            root = root[: -len("/simple")]
        return urlunsplit((parts.scheme, parts.netloc, f"{root}/pypi/{path}", "", ""))

    def close(self) -> None:
        self.http.close()


def _strip_fragment(url: str) -> str:
    return url.split("#", 1)[0]
