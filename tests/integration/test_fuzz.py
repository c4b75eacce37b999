"""Property: whatever a client sends, Havarti answers below 500 and never with a traceback.

Hypothesis generates paths, query strings, headers, upload forms and JSON API
bodies, sent through the real app (Flask's test client with TESTING=True, so
an unhandled exception fails the test instead of hiding in a 500) on SQLite
and on Postgres, which refuses NUL characters and over-long strings that
SQLite stores. The fake upstream answers for valid names. Bounded: a fixed
number of examples and a deadline per example keep the whole module well
under a minute; under CI the examples are derandomised (the same every run).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import dists
from tests.support.fakeindex import FakeIndex
from tests.support.services import postgres_database
from tests.support.webapp import WebApp, basic_auth, make_webapp

PASSCODE = "s3cret"
WHEEL = dists.wheel("gruyere", "1.0")
#: Examples per property on SQLite; Postgres runs half as many.
EXAMPLES = 100


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=timedelta(seconds=5), database=None,
                    derandomize=os.environ.get("CI", "").lower() == "true",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[FakeIndex]:
    fake = FakeIndex().start()
    fake.publish("good", dists.wheel("good", "1.0"), "1.0")
    yield fake
    fake.down()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def web(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        fake_upstream: FakeIndex) -> Iterator[WebApp]:
    folder = tmp_path_factory.mktemp(f"fuzz-{request.param}") / "data"
    if request.param == "sqlite":
        app = make_webapp(folder, fake_upstream.url, passcode=PASSCODE)
        app.upload(WHEEL)
        yield app
        _close(app)
        return
    with postgres_database("havarti_fuzz") as url:
        app = make_webapp(folder, fake_upstream.url, passcode=PASSCODE, DB_URI=url)
        app.upload(WHEEL)
        yield app
        _close(app)


def _close(web: WebApp) -> None:
    web.index.stats.flush()  # its last counts go in before the database is dropped
    web.index.close()


def examples(web: WebApp) -> int:
    return EXAMPLES if web.db.engine.dialect.name == "sqlite" else EXAMPLES // 2


def sane(response) -> None:  # type: ignore[no-untyped-def]
    body = response.get_data()
    response.close()
    assert response.status_code < 500, (response.status, body[:300])
    assert b"Traceback" not in body, body[:300]


# Strategies

SPECIAL = ["#", "?", "%", "..", ".", "\x00", "\r\n", "\n", "\t", "\x7f", "\x85", "²", "\u2028",
           " ", "-", "_", "a" * 300, "good", "Good", "gruyere", WHEEL.filename, "1.0", "json",
           "good-1.0-py3-none-any.whl", "x.metadata", "\ud800"]
text = st.text(st.characters(codec="utf-8"), max_size=24)
segment = st.one_of(
    st.sampled_from(SPECIAL).map(lambda s: quote(s, safe="", errors="surrogatepass")),
    text.map(lambda s: quote(s, safe="")),
    st.binary(max_size=12).map(lambda b: quote(b, safe="")),  # any bytes, UTF-8 or not
)
ROUTES = ["/simple/{}/", "/simple/{}", "/files/{}/{}", "/files/{}/{}.metadata", "/pypi/{}/json",
          "/pypi/{}/{}/json", "/projects/{}/", "/projects/{}/files/{}/",
          "/projects/{}/files/{}/{}", "/api/projects/{}/audit", "/api/projects/{}/files/{}/yank",
          "/api/projects/{}/files/{}", "/{}", "/{}/{}/", "/simple/", "/projects/", "/stats/", "/"]


@st.composite
def paths(draw: st.DrawFn) -> str:
    route = draw(st.sampled_from(ROUTES))
    return route.format(*[draw(segment) for _ in range(route.count("{}"))])


numbers = st.one_of(st.integers(-(2**80), 2**80).map(str),
                    st.text("0123456789.", min_size=1, max_size=5000))
queries = st.lists(
    st.tuples(st.one_of(st.sampled_from(["page", "q", "kind", "format", "version"]), segment),
              st.one_of(segment, numbers)), max_size=3,
).map(lambda pairs: "&".join(f"{k}={v}" for k, v in pairs))

header_text = st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=60)
authorization = st.one_of(
    header_text,
    st.tuples(text, st.one_of(text, st.just(PASSCODE))).map(
        lambda up: "Basic " + base64.b64encode(f"{up[0]}:{up[1]}".encode()).decode()),
    st.binary(max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode()),
)
HEADER_VALUES = {
    "Accept": st.one_of(header_text, st.sampled_from([
        "application/vnd.pypi.simple.v1+json;q=0.x", "text/html;q=1e999", "*/*;q=-1"])),
    "Authorization": authorization,
    "Origin": st.one_of(header_text, st.sampled_from(["null", "http://localhost", "http://[::1"])),
    "Referer": header_text,
    "Sec-Fetch-Site": header_text,
    "If-None-Match": header_text,
    "If-Modified-Since": header_text,
    "Range": st.one_of(header_text, st.sampled_from(["bytes=0-", "bytes=-0", "bytes=9-1",
                                                     "bytes=0-1,2-3", "bytes=99999999999999-"])),
    "Content-Type": header_text,
    "X-Forwarded-For": header_text,
    "Host": header_text,
    "Accept-Encoding": header_text,
}
headers = st.dictionaries(st.sampled_from(sorted(HEADER_VALUES)), st.just(None), max_size=5).flatmap(
    lambda keys: st.fixed_dictionaries({k: HEADER_VALUES[k] for k in keys}))

field = st.one_of(text, st.sampled_from(SPECIAL[:-1]), st.text(max_size=300))
#: Form fields as a client may really send them: any bytes, UTF-8 or not.
raw_field = st.one_of(
    field.map(str.encode),
    st.sampled_from(SPECIAL).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.binary(max_size=40),
)
digest = st.one_of(st.none(), raw_field, st.just(WHEEL.sha256.encode()),
                   st.text("0123456789abcdef", min_size=64, max_size=64).map(str.encode))


def multipart(fields: dict[str, bytes], filename: bytes, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body written by hand, so any bytes go in as they are."""
    boundary = b"havarti-fuzz-boundary"
    parts = [b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
             % (boundary, name.encode(), value) for name, value in fields.items()]
    parts.append(b'--%s\r\nContent-Disposition: form-data; name="content"; filename="%s"\r\n'
                 b"Content-Type: application/octet-stream\r\n\r\n%s\r\n"
                 % (boundary, filename, content))
    parts.append(b"--%s--\r\n" % boundary)
    return b"".join(parts), f"multipart/form-data; boundary={boundary.decode()}"


# Properties

def test_any_path_and_query(web: WebApp) -> None:
    @fuzz(examples(web))
    @given(method=st.sampled_from(["GET", "HEAD", "POST", "DELETE"]), path=paths(),
           query=queries)
    def check(method: str, path: str, query: str) -> None:
        sane(web.client.open(path + ("?" + query if query else ""), method=method,
                             headers=web.auth))

    check()


def test_any_headers(web: WebApp) -> None:
    targets = ["/", "/simple/", "/simple/good/", "/simple/gruyere/", f"/files/gruyere/{WHEEL.filename}",
               "/pypi/gruyere/json", "/pypi/good/1.0/json", "/projects/gruyere/", "/stats/",
               f"/api/projects/gruyere/files/{WHEEL.filename}/unyank", "/api/projects/gruyere/audit"]

    @fuzz(examples(web))
    @given(path=st.sampled_from(targets), sent=headers, post=st.booleans())
    def check(path: str, sent: dict[str, str], post: bool) -> None:
        method = "POST" if post or "/api/projects/gruyere/files" in path else "GET"
        sane(web.client.open(path, method=method, headers=sent,
                             environ_base={"REMOTE_ADDR": "192.0.2.77"}))

    check()


def test_any_upload_form(web: WebApp) -> None:
    @fuzz(examples(web))
    @given(name=st.one_of(st.just(b"gruyere"), raw_field),
           version=st.one_of(st.just(b"1.0"), raw_field),
           filename=st.one_of(st.just(WHEEL.filename.encode()), raw_field,
                              raw_field.map(lambda s: b"gruyere-" + s + b"-py3-none-any.whl")),
           content=st.one_of(st.just(WHEEL.data), st.binary(max_size=200)),
           sha256=digest, md5=digest, action=st.one_of(st.just(b"file_upload"), raw_field))
    def check(name: bytes, version: bytes, filename: bytes, content: bytes, sha256: bytes | None,
              md5: bytes | None, action: bytes) -> None:
        fields = {":action": action, "name": name, "version": version}
        if sha256 is not None:
            fields["sha256_digest"] = sha256
        if md5 is not None:
            fields["md5_digest"] = md5
        body, content_type = multipart(fields, filename, content)
        sane(web.client.post("/", data=body, content_type=content_type, headers=web.auth,
                             environ_base={"REMOTE_ADDR": "192.0.2.78"}))

    check()


def _nested(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.lists(children, max_size=3),
                     st.dictionaries(st.one_of(st.just("reason"), text), children, max_size=3))


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), field), _nested,
    max_leaves=10)


def test_any_json_api_body(web: WebApp) -> None:
    import json

    api = f"/api/projects/gruyere/files/{WHEEL.filename}/yank"
    body = st.one_of(
        json_values.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.just("reason"), field, min_size=1).map(lambda v: json.dumps(v).encode()),
        st.just(b'{"reason": "\\ud800"}'), st.just(b'{"reason": "\\u0000"}'),
        st.integers(1, 40_000).map(lambda n: b"[" * n + b"]" * n),
        st.binary(max_size=100),
    )

    @fuzz(examples(web))
    @given(data=body, content_type=st.one_of(st.just("application/json"), header_text),
           form=st.booleans())
    def check(data: bytes, content_type: str, form: bool) -> None:
        sane(web.client.post(api, data=data, headers={**web.auth, "Content-Type": content_type},
                             environ_base={"REMOTE_ADDR": "192.0.2.79"}))
        if form:
            # The same through the HTML form route.
            sane(web.client.post(api.removeprefix("/api"), headers=web.auth,
                                 data={"reason": data.decode("utf-8", "replace")},
                                 environ_base={"REMOTE_ADDR": "192.0.2.79"}))

    check()


def test_any_access_api_body(web: WebApp) -> None:
    """Tokens, reserved names and policies: any JSON object is a 2xx or a one-line 4xx."""
    import json

    keys = st.sampled_from(["scope", "projects", "expires", "note", "pattern", "action", "match",
                            "filename", "reason"])
    value = st.one_of(field, st.sampled_from(["read", "upload", "admin", "deny", "allow", "90d",
                                              "acme-*", "x<1", "*.whl"]), json_values)
    body = st.dictionaries(keys, value, max_size=5).map(lambda v: json.dumps(v).encode())

    @fuzz(examples(web))
    @given(path=st.sampled_from(["/api/tokens", "/api/reserved", "/api/policies"]), data=body)
    def check(path: str, data: bytes) -> None:
        sane(web.client.post(path, data=data, headers={**web.auth,
                                                       "Content-Type": "application/json"},
                             environ_base={"REMOTE_ADDR": "192.0.2.80"}))

    check()


# The probes that found 500s, on each database (Postgres refuses NUL and over-long values).

@pytest.mark.parametrize("path", [
    "/simple/a%00b/", "/simple/?q=%00", "/projects/?q=a%00b", "/projects/a%00b/",
    "/files/gruyere/gruyere%00-1.0.tar.gz", "/pypi/gruyere/1.0%00/json",
    "/api/projects/gruyere/audit?x=%00", "/projects/?page=4611686018427387904",
])
def test_nul_and_huge_numbers_in_urls(web: WebApp, path: str) -> None:
    response = web.client.get(path, headers=web.auth)
    assert response.status_code == 400, (path, response.status)
    sane(response)


@pytest.mark.parametrize("fields, reason", [
    ({"requires_python": ">=3," + "!=3.1," * 60}, "Requires-Python is longer than 255"),
    ({"summary": "nul\0"}, "Summary contains a NUL"),
    ({"description": "nul\0", "description_content_type": "text/plain"}, "contains a NUL"),
    ({"description": "x", "description_content_type": "t" * 300}, "longer than 255"),
])
def test_metadata_no_database_can_store_is_a_400(web: WebApp, fields: dict[str, Any],
                                                 reason: str) -> None:
    import io

    wheel = dists.wheel("unstorable", "1.0", **fields)
    response = web.client.post("/", headers=web.auth, data={
        ":action": "file_upload", "name": "unstorable", "version": "1.0",
        "content": (io.BytesIO(wheel.data), wheel.filename)})
    assert response.status_code == 400 and reason in response.get_data(as_text=True)
    assert web.client.get("/projects/unstorable/").status_code != 200


@pytest.mark.parametrize("reason", ["nul\u0000", "\ud800", "x" * 600])
def test_yank_reasons_no_database_can_store(web: WebApp, reason: str) -> None:
    import json

    body = json.dumps({"reason": reason}).encode()
    response = web.client.post(f"/api/projects/gruyere/files/{WHEEL.filename}/yank", data=body,
                               headers={**basic_auth(PASSCODE), "Content-Type": "application/json"})
    assert response.status_code == 400
    sane(response)
