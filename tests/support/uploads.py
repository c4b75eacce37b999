"""Legacy-API uploads over plain HTTP, for the requests twine and uv refuse to send."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from tests.support.dists import Dist


def upload_form(dist: Dist, **overrides: str | None) -> dict[str, str]:
    """The form fields twine sends for ``dist``; an override of None drops the field."""
    name, version = _name_version(dist)
    fields: dict[str, str | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": name,
        "version": version,
        "filetype": "bdist_wheel" if dist.filename.endswith(".whl") else "sdist",
        "pyversion": "py3" if dist.filename.endswith(".whl") else "source",
        "sha256_digest": hashlib.sha256(dist.data).hexdigest(),
        "md5_digest": hashlib.md5(dist.data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(dist.data, digest_size=32).hexdigest(),
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def post_upload(url: str, dist: Dist, password: str | None, *, filename: str | None = None,
                data: bytes | None = None, path: str = "/", **overrides: str | None) -> httpx.Response:
    """POST ``dist`` (or other ``data`` / ``filename``) to Havarti's legacy upload API."""
    auth = ("havarti", password) if password is not None else None
    content = dist.data if data is None else data
    files = {"content": (filename or dist.filename, content, "application/octet-stream")}
    return httpx.post(url.rstrip("/") + path, data=upload_form(dist, **overrides), files=files,
                      auth=auth, timeout=60)


def assert_refused(response: httpx.Response, status: int, *words: str) -> None:
    """A refusal as users see it: the status and one line naming the reason, also as the reason phrase."""
    assert response.status_code == status, (response.status_code, response.text)
    line = response.text.strip()
    assert "\n" not in line and line
    # twine shows the reason phrase: it carries the same line.
    assert response.reason_phrase == line
    for word in words:
        assert word.lower() in line.lower(), line


def stored_objects(package_cache: Path) -> dict[str, bytes]:
    """Every object local storage holds (key -> bytes), temp files aside."""
    from tests.support.cloud import stored_in_cloud

    cloud = stored_in_cloud(package_cache)
    if cloud is not None:
        return cloud
    root = package_cache / "files"
    if not root.exists():
        return {}
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and ".tmp" not in p.relative_to(root).parts}


def _name_version(dist: Dist) -> tuple[str, str]:
    for line in dist.metadata.decode().splitlines():
        if line.startswith("Name: "):
            name = line[6:]
        elif line.startswith("Version: "):
            version = line[9:]
    return name, version
