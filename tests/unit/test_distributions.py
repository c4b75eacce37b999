"""Distribution filenames and the core metadata read from inside the files."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

from havarti.distributions import (
    normalized_filename,
    parse_core_metadata,
    parse_dist_filename,
    read_core_metadata,
    same_version,
)
from havarti.errors import InvalidUpload
from tests.support import dists


@pytest.mark.parametrize("filename,project,version,packagetype", [
    ("Foo_Bar-1.0-py3-none-any.whl", "foo-bar", "1.0", "bdist_wheel"),
    ("foo_bar-2.0.0rc1-1-cp311-cp311-manylinux_2_17_x86_64.whl", "foo-bar", "2.0.0rc1",
     "bdist_wheel"),
    ("foo_bar-1.0.post1.tar.gz", "foo-bar", "1.0.post1", "sdist"),
    ("zope.interface-6.0.tar.gz", "zope-interface", "6.0", "sdist"),
    ("legacy-0.9.zip", "legacy", "0.9", "sdist"),
])
def test_valid_filenames(filename, project, version, packagetype):
    dist = parse_dist_filename(filename)
    assert (dist.project, dist.version, dist.packagetype) == (project, version, packagetype)


@pytest.mark.parametrize("filename", [
    "", "foo.txt", "foo-1.0.egg", "foo-1.0-py3.whl", "foo.tar.gz", "foo-notaversion!.tar.gz",
    "../foo-1.0.tar.gz", "dir/foo-1.0.tar.gz", "dir\\foo-1.0.tar.gz", "foo-1.0..tar.gz",
    "foo\0-1.0.tar.gz",
])
def test_invalid_filenames(filename):
    with pytest.raises(InvalidUpload, match="filename"):
        parse_dist_filename(filename)


@pytest.mark.parametrize("a,b,same", [
    ("1.0", "1.0", True), ("1.0-alpha", "1.0a0", True), ("1.0.0", "1.0", False),
    ("1.0", "1.0.post0", False), ("v2", "2", True), ("1.0", "1.1", False),
])
def test_same_version_is_pep_440_without_stripping_zeros(a, b, same):
    assert same_version(a, b) is same


def test_core_metadata_from_wheel_and_sdist():
    for dist in (dists.wheel("meta-pkg", "1.0", requires_python=">=3.9"),
                 dists.sdist("meta-pkg", "1.0", requires_python=">=3.9")):
        raw = read_core_metadata(io.BytesIO(dist.data), dist.filename)
        assert raw == dist.metadata
        metadata = parse_core_metadata(raw)
        assert (metadata.name, metadata.version, metadata.requires_python) == \
            ("meta-pkg", "1.0", ">=3.9")


def test_description_from_body_or_header():
    body = parse_core_metadata(dists.core_metadata("d", "1", description="# Title\n\ntext",
                                                   description_content_type="text/markdown"))
    assert body.description == "# Title\n\ntext"
    assert body.description_content_type == "text/markdown"
    header = parse_core_metadata(b"Metadata-Version: 1.1\nName: d\nVersion: 1\nDescription: old style\n")
    assert header.description == "old style"
    assert parse_core_metadata(b"Name: d\nVersion: 1\n").requires_python is None


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("filename,data,reason", [
    ("x-1.0-py3-none-any.whl", b"not a zip", "zip"),
    ("x-1.0.tar.gz", b"not a tarball", "tar.gz"),
    ("x-1.0.tar.gz", b"\x1f\x8b\x08\x00truncated", "tar.gz"),
    ("x-1.0-py3-none-any.whl", _zip({"x/__init__.py": b""}), "metadata"),
    # METADATA outside a .dist-info folder does not count.
    ("x-1.0-py3-none-any.whl", _zip({"x/METADATA": b"Name: x"}), "metadata"),
    ("x-1.0.tar.gz", _tar({"x-1.0/setup.py": b""}), "PKG-INFO"),
    # Only the top folder's PKG-INFO is the sdist's (not a vendored one deeper down).
    ("x-1.0.tar.gz", _tar({"x-1.0/vendor/y/PKG-INFO": b"Name: y"}), "PKG-INFO"),
    ("x-1.0.zip", _zip({"x-1.0/setup.py": b""}), "metadata"),
])
def test_unreadable_or_metadata_less_archives(filename, data, reason):
    with pytest.raises(InvalidUpload, match=reason):
        read_core_metadata(io.BytesIO(data), filename)


def test_a_gzip_bomb_sdist_is_refused_without_inflating_it():
    import time

    bomb = dists.gzip_bomb_sdist("bomb", "1.0")
    started = time.monotonic()
    with pytest.raises(InvalidUpload, match="decompresses to more than"):
        read_core_metadata(io.BytesIO(bomb.data), bomb.filename)
    # Before: all 256 MiB inflated; now at most 64 MiB plus 32 times the upload.
    assert time.monotonic() - started < 3


def test_pkg_info_after_ordinary_files_is_still_found():
    # hatchling writes PKG-INFO last: a real sdist with it at the end reads as before.
    bomb = dists.gzip_bomb_sdist("late", "1.0", inflated=5 * 2**20)
    assert read_core_metadata(io.BytesIO(bomb.data), bomb.filename) == bomb.metadata


def test_an_sdist_with_too_many_members_is_refused():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for number in range(20):
            archive.addfile(tarfile.TarInfo(f"many-1.0/empty{number}"), io.BytesIO(b""))
    with pytest.raises(InvalidUpload, match="more than 10 members"):
        read_core_metadata(buffer, "many-1.0.tar.gz", max_members=10)


@pytest.mark.parametrize(("filename", "project", "belongs"), [
    ("victim-1.0-py3-none-any.whl", "victim", True),
    ("Foo_Bar-1.0-py3-none-any.whl", "foo.bar", True),
    ("foo_bar-1.0.tar.gz", "Foo-Bar", True),
    ("victim-1.0-py3-none-any.whl", "evilproj", False),
    ("victim-1.0.tar.gz", "evilproj", False),
    ("evilproj-1.0.egg", "evilproj", False),          # no wheel/sdist name: not offered
    ("evilproj-notaversion!.tar.gz", "evilproj", False),
])
def test_a_file_belongs_to_the_project_its_filename_names(filename, project, belongs):
    from havarti.distributions import belongs_to

    assert belongs_to(filename, project) is belongs


@pytest.mark.parametrize("a,b,same", [
    ("Foo_Bar-1.0-py3-none-any.whl", "foo.bar-1.0-py3-none-any.whl", True),
    ("foo_bar-1.0-py3-none-any.whl", "foo_bar-1.0.0-py3-none-any.whl", True),
    ("Foo-1.0.tar.gz", "foo-1.0.tar.gz", True),
    ("foo-1.0-py3-none-any.whl", "foo-1.0-py2.py3-none-any.whl", False),
    ("foo-1.0-py3-none-any.whl", "foo-1.0-1-py3-none-any.whl", False),
    ("foo-1.0-py3-none-any.whl", "foo-1.0.post1-py3-none-any.whl", False),
    ("foo-1.0.tar.gz", "foo-1.0.zip", False),
])
def test_normalized_filename_equates_what_installers_equate(a, b, same):
    assert (normalized_filename(a) == normalized_filename(b)) is same
