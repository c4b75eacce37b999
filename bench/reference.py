"""The reference: real distributions, a static PEP 503/691 index of them, and nginx serving it.

The same nginx is Havarti's upstream (FALLBACK) and the yardstick Havarti is
measured against, so both sides serve identical bytes from the same disk.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from packaging.utils import canonicalize_name, parse_wheel_filename

#: About 40 popular distributions, pinned so every run installs the same bytes: pure
#: wheels plus binary cp311 manylinux x86_64 ones (numpy, cryptography, pydantic-core...).
DISTRIBUTIONS = (
    "requests==2.34.2", "urllib3==2.8.0", "idna==3.20", "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.3", "six==1.17.0", "packaging==26.4", "setuptools==84.2.1",
    "wheel==0.48.0", "pip==26.3", "attrs==26.1.0", "click==8.5.1", "jinja2==3.1.6",
    "markupsafe==3.0.4", "pyyaml==6.0.4", "python-dateutil==4.0.0", "pytz==2026.6",
    "typing-extensions==4.16.0", "botocore==1.44.8", "boto3==1.44.8", "s3transfer==0.19.3",
    "jmespath==1.1.0", "cryptography==50.0.2", "cffi==2.1.1", "pycparser==3.12",
    "numpy==2.4.6", "pydantic==2.14.4", "pydantic-core==2.50.5", "annotated-types==0.8.0",
    "filelock==4.3.1", "platformdirs==4.14.8", "zipp==4.1.2", "importlib-metadata==10.2.0",
    "pluggy==1.7.0", "pytest==9.2.0", "iniconfig==2.3.1", "pygments==2.21.0", "rich==15.0.0",
    "markdown-it-py==4.3.0", "mdurl==0.1.2", "sqlalchemy==2.1.9", "greenlet==3.5.6",
    "psutil==7.2.2", "protobuf==7.36.2", "wrapt==2.5.2",
)
BIG_PROJECT = "havarti-bench-big"
BIG_SIZE = 100 * 2**20
#: Synthesized projects (pages only; their files are never fetched): botocore-sized pages.
SYNTH_PROJECTS = {"synth-2000": 2000, "synth-5000": 5000}
SMALL_PROJECT = "six"
JSON_TYPE = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class Entry:
    filename: str
    sha256: str
    size: int
    requires_python: str | None
    metadata_sha256: str | None
    upload_time: str


def download(dists: Path) -> None:
    """Download DISTRIBUTIONS once, with pip and the machine's own index configuration."""
    marker = dists / ".complete"
    wanted = "\n".join(DISTRIBUTIONS)
    if marker.exists() and marker.read_text() == wanted:
        return
    dists.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--disable-pip-version-check", "-q", "-d", str(dists), *DISTRIBUTIONS], check=True)
    marker.write_text(wanted)


def build_big_wheel(dists: Path) -> Path:
    """A valid ~100 MB wheel of incompressible bytes, stored uncompressed (like a big binary wheel)."""
    path = dists / f"{BIG_PROJECT.replace('-', '_')}-1.0-py3-none-any.whl"
    if path.exists() and path.stat().st_size > BIG_SIZE:
        return path
    tmp = path.with_suffix(".tmp")
    info = f"{BIG_PROJECT.replace('-', '_')}-1.0.dist-info"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{info}/METADATA", _metadata_text(BIG_PROJECT, "1.0"))
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: havarti-bench\n"
                                    "Root-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr("havarti_bench_big/blob.bin", os.urandom(BIG_SIZE))
        zf.writestr(f"{info}/RECORD", "")
    tmp.rename(path)
    return path


def _metadata_text(name: str, version: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"


def _wheel_metadata(path: Path) -> bytes | None:
    with zipfile.ZipFile(path) as zf:
        for member in zf.namelist():
            if member.count("/") == 1 and member.endswith(".dist-info/METADATA"):
                return zf.read(member)
    return None


def _requires_python(metadata: bytes) -> str | None:
    for line in metadata.decode("utf-8", "replace").splitlines():
        if not line.strip():
            break
        if line.lower().startswith("requires-python:"):
            return line.split(":", 1)[1].strip()
    return None


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(2**20):
            digest.update(chunk)
    return digest.hexdigest()


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_index(dists: Path, www: Path) -> dict[str, list[Entry]]:
    """Write a static PEP 503 (HTML) + PEP 691/700 (JSON) index of ``dists`` under ``www``."""
    if www.exists():
        shutil.rmtree(www)
    files_dir = www / "files"
    files_dir.mkdir(parents=True)
    projects: dict[str, list[Entry]] = {}
    for path in sorted(dists.glob("*.whl")):
        name, version, _, _ = parse_wheel_filename(path.name)
        os.link(path, files_dir / path.name)
        metadata = _wheel_metadata(path)
        meta_sha = None
        if metadata is not None:
            (files_dir / f"{path.name}.metadata").write_bytes(metadata)
            meta_sha = hashlib.sha256(metadata).hexdigest()
        projects.setdefault(str(name), []).append(Entry(
            path.name, _sha256_file(path), path.stat().st_size,
            _requires_python(metadata) if metadata else None, meta_sha, _iso(path.stat().st_mtime)))
    for project, count in SYNTH_PROJECTS.items():
        stem = project.replace("-", "_")
        projects[project] = [Entry(
            f"{stem}-1.{i}.0-py3-none-any.whl", hashlib.sha256(f"{project}{i}".encode()).hexdigest(),
            100_000 + i, ">=3.9", hashlib.sha256(f"m{project}{i}".encode()).hexdigest(),
            _iso(1.7e9 + i * 3600)) for i in range(count)]
    for project, entries in projects.items():
        page = www / "simple" / project
        page.mkdir(parents=True)
        for name, text in (("index.html", _page_html(project, entries)),
                           ("index.json", _page_json(project, entries))):
            (page / name).write_text(text)
            # nginx's best for a client that takes gzip (gzip_static): compressed once, here.
            (page / f"{name}.gz").write_bytes(gzip.compress(text.encode(), 6, mtime=0))
    names = sorted(projects)
    (www / "simple" / "index.html").write_text(
        "<!DOCTYPE html><html><body>\n"
        + "".join(f'<a href="{n}/">{n}</a>\n' for n in names) + "</body></html>\n")
    (www / "simple" / "index.json").write_text(json.dumps(
        {"meta": {"api-version": "1.1"}, "projects": [{"name": n} for n in names]}))
    return projects


def _page_html(project: str, entries: list[Entry]) -> str:
    lines = ['<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.1">',
             f"<title>Links for {project}</title></head><body><h1>Links for {project}</h1>"]
    for e in entries:
        attrs = ""
        if e.requires_python:
            attrs += f' data-requires-python="{html.escape(e.requires_python)}"'
        if e.metadata_sha256:
            attrs += (f' data-dist-info-metadata="sha256={e.metadata_sha256}"'
                      f' data-core-metadata="sha256={e.metadata_sha256}"')
        lines.append(f'<a href="../../files/{e.filename}#sha256={e.sha256}"{attrs}>{e.filename}</a><br>')
    lines.append("</body></html>\n")
    return "\n".join(lines)


def _page_json(project: str, entries: list[Entry]) -> str:
    files = []
    versions = set()
    for e in entries:
        versions.add(str(parse_wheel_filename(e.filename)[1]))
        item: dict = {"filename": e.filename, "url": f"../../files/{e.filename}",
                      "hashes": {"sha256": e.sha256}, "size": e.size,
                      "upload-time": e.upload_time, "yanked": False}
        if e.requires_python:
            item["requires-python"] = e.requires_python
        if e.metadata_sha256:
            item["core-metadata"] = item["dist-info-metadata"] = {"sha256": e.metadata_sha256}
        files.append(item)
    return json.dumps({"meta": {"api-version": "1.1"}, "name": canonicalize_name(project),
                       "versions": sorted(versions), "files": files})


NGINX_CONF = """\
{user}
worker_processes 2;
pid {work}/nginx-{port}.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    {validators}
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {work}/nginx-tmp;
    proxy_temp_path {work}/nginx-tmp;
    fastcgi_temp_path {work}/nginx-tmp;
    uwsgi_temp_path {work}/nginx-tmp;
    scgi_temp_path {work}/nginx-tmp;
    types {{
        text/html html;
        {json_type} json;
        application/zip whl;
        text/plain metadata;
    }}
    default_type application/octet-stream;
    # PEP 691 content negotiation for a static tree: JSON when the client asks for it.
    map $http_accept $simple_index {{
        default index.html;
        "~application/vnd\\.pypi\\.simple\\.v1\\+json" index.json;
    }}
    server {{
        listen 127.0.0.1:{port};
        root {www};
        location /simple/ {{
            index $simple_index;
            add_header Vary Accept;
            gzip_static on;
            gzip_vary on;
        }}
        location /files/ {{ }}
    }}
}}
"""


class Nginx:
    """nginx on a loopback port serving ``www`` (2 workers, like Havarti's 2 web processes)."""

    def __init__(self, www: Path, work: Path, port: int, validators: bool = True) -> None:
        self.www, self.work, self.port = www, work, port
        #: False: no ETag, no Last-Modified, no 304s, like many gateways and mirrors.
        self.validators = validators
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Nginx:
        (self.work / "nginx-tmp").mkdir(parents=True, exist_ok=True)
        conf = self.work / f"nginx-{self.port}.conf"
        conf.write_text(NGINX_CONF.format(
            user="user root;" if os.geteuid() == 0 else "", work=self.work, www=self.www,
            port=self.port, json_type=JSON_TYPE,
            validators="" if self.validators else "etag off; if_modified_since off;"))
        self.process = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(self.work),
                                         "-g", "daemon off;"], start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/simple/", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"nginx did not start: {(self.work / 'nginx-error.log').read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGQUIT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None
