"""Where upstream files may come from: the origin rule, without any network.

Every address here is an IP literal or ``localhost``: the rule refuses before
anything is sent, and these tests send nothing at all.
"""

from __future__ import annotations

import pytest
from pypi_simple import PYPI_SIMPLE_ENDPOINT

from havarti.config import ConfigError, load_settings, parse_hosts
from havarti.errors import UpstreamError
from havarti.upstream.origins import (
    Origins,
    RefusedURL,
    address_kind,
    metadata_url,
)

UPSTREAM = "http://127.0.0.1:3141/simple/"


def allowed(origins: Origins, url: str) -> bool:
    try:
        origins.check(url)
    except RefusedURL:
        return False
    return True


@pytest.mark.parametrize(("url", "expected"), [
    ("https://h.test/p/f.whl", "https://h.test/p/f.whl.metadata"),
    # The probe: string appending made ".metadata" part of the query.
    ("http://h.test/admin?x=", "http://h.test/admin.metadata?x="),
    ("https://h.test/p/f.whl?sig=a%2Fb&exp=1", "https://h.test/p/f.whl.metadata?sig=a%2Fb&exp=1"),
    ("https://h.test/p/f.whl#sha256=00", "https://h.test/p/f.whl.metadata"),
])
def test_metadata_url_appends_to_the_path(url, expected):
    assert metadata_url(url) == expected


def test_the_upstreams_own_origin_is_allowed_other_ports_are_not():
    origins = Origins(UPSTREAM)
    assert allowed(origins, "http://127.0.0.1:3141/files/demo/demo-1.0.tar.gz")
    assert not allowed(origins, "http://127.0.0.1:5432/")
    assert not allowed(origins, "http://127.0.0.1/")
    assert not allowed(origins, "http://localhost:3141/")  # another name: not the same origin
    assert not allowed(origins, "file:///etc/passwd")
    assert not allowed(origins, "ftp://127.0.0.1:3141/x")


def test_listed_hosts_mean_their_default_port_unless_a_port_is_given():
    origins = Origins("https://93.184.216.34/simple/",
                      parse_hosts("9.9.9.9, 8.8.4.4:8443"))
    assert allowed(origins, "https://9.9.9.9/f.whl")
    assert allowed(origins, "http://9.9.9.9/f.whl")
    assert not allowed(origins, "https://9.9.9.9:8443/f.whl")
    assert allowed(origins, "https://8.8.4.4:8443/f.whl")
    assert not allowed(origins, "https://8.8.4.4/f.whl")
    assert not allowed(origins, "https://1.0.0.1/f.whl")


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",     # a cloud metadata service
    "http://[fe80::1]/", "http://10.0.0.8/", "http://192.168.1.1/", "http://172.16.0.1/",
    "http://127.0.0.1:8080/", "http://[::1]/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0/",
    "http://localhost:6379/",
])
def test_any_host_still_refuses_internal_addresses_for_a_public_upstream(url):
    origins = Origins("https://93.184.216.34/simple/", parse_hosts("*"))
    assert allowed(origins, "https://1.1.1.1/f.whl")  # any public host
    assert not allowed(origins, url)


def test_internal_addresses_of_the_upstreams_kind_are_allowed():
    # The upstream runs on this host: files on this host are the usual case.
    loopback = Origins(UPSTREAM, parse_hosts("*"))
    assert allowed(loopback, "http://127.0.0.1:9000/f.whl")
    assert allowed(loopback, "http://localhost:9000/f.whl")
    assert not allowed(loopback, "http://169.254.169.254/")
    assert not allowed(loopback, "http://10.0.0.8/")
    private = Origins("http://10.1.2.3/simple/", parse_hosts("*"))
    assert allowed(private, "http://10.9.9.9/f.whl")
    assert not allowed(private, "http://127.0.0.1/")


def test_a_listed_name_that_resolves_inside_is_refused():
    origins = Origins("https://93.184.216.34/simple/", parse_hosts("localhost"))
    with pytest.raises(RefusedURL, match="loopback"):
        origins.check("https://localhost/f.whl")


def test_pypi_file_host_is_allowed_by_default_for_pypi_only():
    # pip knows PyPI's file host; Havarti recognises it by digest (pip is only a test tool).
    from pip._internal.models.index import PyPI

    pypi_files = f"https://{PyPI.file_storage_domain}/packages/aa/bb/f.whl"
    origins = Origins(PYPI_SIMPLE_ENDPOINT, resolve=False)
    assert allowed(origins, pypi_files)
    assert allowed(origins, PYPI_SIMPLE_ENDPOINT.replace("/simple/", "/pypi/demo/json"))
    assert not allowed(origins, "https://pypi.example.test/f.whl")
    assert not allowed(origins, f"http://{PyPI.file_storage_domain}:8080/f.whl")
    assert not allowed(Origins("https://mirror.example.test/simple/", resolve=False), pypi_files)
    # Set explicitly, the list is what it says.
    assert not allowed(Origins(PYPI_SIMPLE_ENDPOINT, parse_hosts("files.example.test"),
                               resolve=False), pypi_files)


@pytest.mark.parametrize(("address", "kind"), [
    ("8.8.8.8", "public"), ("127.0.0.2", "loopback"), ("::1", "loopback"),
    ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("10.1.1.1", "private"),
    ("fd00::1", "private"), ("::ffff:10.0.0.1", "private"), ("224.0.0.1", "other"),
])
def test_address_kinds(address, kind):
    assert address_kind(address) == kind


def test_refusals_are_upstream_errors_with_one_line():
    with pytest.raises(UpstreamError) as caught:
        Origins(UPSTREAM).check("http://127.0.0.1:1/x\r\ninjected")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("raw", ["https://files.example.test", "host/path", "a@b", ",", ""])
def test_bad_file_hosts_are_a_configuration_error(raw):
    if not raw:
        assert load_settings({"UPSTREAM_FILE_HOSTS": raw}).upstream_file_hosts is None
        return
    with pytest.raises(ConfigError, match="^UPSTREAM_FILE_HOSTS"):
        load_settings({"UPSTREAM_FILE_HOSTS": raw})


def test_file_hosts_setting():
    settings = load_settings({"UPSTREAM_FILE_HOSTS": "Files.Example.Test, mirror.test:8080 *"})
    assert settings.upstream_file_hosts == {"files.example.test", "mirror.test:8080", "*"}
    assert load_settings({}).upstream_file_hosts is None
    assert load_settings({"UPSTREAM_MIN_RATE": "100kB/s"}).upstream_min_rate == 100_000
    assert load_settings({}).max_file_size == 5 * 10**9
