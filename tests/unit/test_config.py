"""Settings from the environment: defaults, aliases, and one clear error per bad value."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pypi_simple import PYPI_SIMPLE_ENDPOINT

from havarti.cli import main
from havarti.config import ConfigError, Settings, load_settings

README = Path(__file__).parents[2] / "README.md"


def test_defaults_are_the_embedded_index():
    settings = load_settings({})
    assert (settings.port, settings.host, settings.storage) == (8080, "0.0.0.0", "localstorage")
    assert settings.package_cache == Path("~/.havarti-packages").expanduser()
    assert settings.database_url == f"sqlite:///{settings.package_cache / 'havarti.db'}"
    assert settings.primary_upstream == PYPI_SIMPLE_ENDPOINT
    assert settings.max_upload_size == 100 * 10**6
    assert settings.passcode is None and settings.redis_uri is None
    assert settings.read_auth is False and settings.debug is False
    # What the banner prints: a URL a client on this machine can use.
    assert settings.base_url() == "http://127.0.0.1:8080"


def test_seed_names_and_paas_aliases():
    settings = load_settings({"PORT": "9000", "PASSCODE": "pw", "PACKAGE_CACHE": "/srv/pkgs",
                              "DATABASE_URL": "postgres://u:p@db/havarti",
                              "REDIS_URL": "redis://cache:6379/0", "DEBUG": "True"})
    assert settings.port == 9000 and settings.passcode == "pw"
    assert settings.package_cache == Path("/srv/pkgs")
    assert settings.database_url == "postgresql+psycopg://u:p@db/havarti"
    assert settings.redis_uri == "redis://cache:6379/0"
    assert settings.debug is True


def test_seed_name_wins_over_alias():
    settings = load_settings({"DB_URI": "sqlite:////tmp/a.db", "DATABASE_URL": "postgresql://x/y",
                              "REDIS_URI": "redis://a", "REDIS_URL": "redis://b"})
    assert settings.database_url == "sqlite:////tmp/a.db"
    assert settings.redis_uri == "redis://a"


def test_empty_values_count_as_unset():
    assert load_settings({"PORT": "", "PASSCODE": "", "STORAGE": ""}) == load_settings({})


@pytest.mark.parametrize("raw,expected", [("500MB", 500 * 10**6), ("1GiB", 2**30),
                                          ("12345", 12345), ("1.5 GB", 15 * 10**8)])
def test_sizes(raw, expected):
    assert load_settings({"MAX_UPLOAD_SIZE": raw}).max_upload_size == expected


@pytest.mark.parametrize("raw,expected", [("3d", timedelta(days=3)), ("12h", timedelta(hours=12)),
                                          ("90", timedelta(seconds=90)), ("1w", timedelta(weeks=1))])
def test_durations(raw, expected):
    assert load_settings({"COOLDOWN": raw}).cooldown == expected


def test_public_url_is_what_the_banner_shows():
    assert load_settings({"PUBLIC_URL": "https://pkgs.example.test/"}).base_url() == \
        "https://pkgs.example.test"
    assert load_settings({"HOST": "10.1.2.3", "PORT": "81"}).base_url() == "http://10.1.2.3:81"


def test_one_base_url_rule_public_url_then_the_request_then_the_bind_address():
    public = load_settings({"PUBLIC_URL": "https://pkgs.example.test/"})
    assert public.base_url("http://attacker.example/") == "https://pkgs.example.test"
    assert load_settings({}).base_url("http://reached.example:81/") == "http://reached.example:81"


BAD = [
    ({"PORT": "eighty"}, "PORT"), ({"PORT": "0"}, "PORT"), ({"PORT": "70000"}, "PORT"),
    ({"STORAGE": "floppy"}, "STORAGE"),
    ({"STORAGE": "s3storage", "S3_ACCESS_KEY": "k", "S3_SECRET_KEY": "s"}, "S3_BUCKET"),
    ({"STORAGE": "s3storage", "S3_BUCKET": "b", "S3_SECRET_KEY": "s"}, "S3_ACCESS_KEY"),
    ({"STORAGE": "rackspacestorage", "RACKSPACE_USERNAME": "u", "RACKSPACE_KEY": "k"},
     "RACKSPACE_CONTAINER"),
    ({"STORAGE": "swiftstorage"}, "SWIFT_AUTH_URL"),
    ({"STORAGE": "swiftstorage", "SWIFT_AUTH_URL": "http://keystone:5000/v3", "SWIFT_USER": "u",
      "SWIFT_KEY": "k", "SWIFT_CONTAINER": "c", "SWIFT_AUTH_VERSION": "3"}, "SWIFT_PROJECT"),
    ({"SWIFT_AUTH_VERSION": "4"}, "SWIFT_AUTH_VERSION"),
    ({"READ_AUTH": "perhaps"}, "READ_AUTH"),
    ({"READ_AUTH": "true"}, "PASSCODE"),
    ({"DEBUG": "verbose"}, "DEBUG"),
    ({"MAX_UPLOAD_SIZE": "lots"}, "MAX_UPLOAD_SIZE"),
    ({"MAX_UPLOAD_SIZE": "10 parsecs"}, "MAX_UPLOAD_SIZE"),
    ({"CACHE_MAX_SIZE": "-5GB"}, "CACHE_MAX_SIZE"),
    ({"DB_URI": "not a url"}, "DB_URI"),
    ({"DATABASE_URL": "/var/db.sqlite"}, "DATABASE_URL"),
    ({"REDIS_URI": "http://127.0.0.1:6379"}, "REDIS_URI"),
    ({"FALLBACK": "ftp://mirror"}, "FALLBACK"),
    ({"PUBLIC_URL": "pkgs.example.test"}, "PUBLIC_URL"),
    ({"WEB_CONCURRENCY": "0"}, "WEB_CONCURRENCY"),
    ({"WEB_THREADS": "many"}, "WEB_THREADS"),
    ({"UPSTREAM_TIMEOUT": "0"}, "UPSTREAM_TIMEOUT"),
    ({"UPSTREAM_TIMEOUT": "soon"}, "UPSTREAM_TIMEOUT"),
    ({"INDEX_TTL": "-1"}, "INDEX_TTL"),
    ({"FILE_MISS": "ignore"}, "FILE_MISS"),
    ({"COOLDOWN": "a while"}, "COOLDOWN"),
    ({"S3_REDIRECT": "sometimes"}, "S3_REDIRECT"),
]


@pytest.mark.parametrize("env,variable", BAD, ids=[f"{v}-{i}" for i, (_, v) in enumerate(BAD)])
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert message.startswith(variable) and "\n" not in message


def test_cli_turns_a_bad_value_into_one_line_and_exit_2(tmp_path):
    result = CliRunner().invoke(main, ["serve"], env={"PORT": "eighty",
                                                      "PACKAGE_CACHE": str(tmp_path / "d")})
    assert result.exit_code == 2
    assert result.stderr.strip() == "havarti: configuration error: PORT='eighty': expected a whole number"
    assert not (tmp_path / "d").exists()


def test_readme_documents_every_variable():
    readme = README.read_text()
    missing = [name for f in fields(Settings) for name in f.metadata["env"]
               if f"`{name}`" not in readme]
    assert missing == []


def test_default_upstream_is_pypi_simples_own_constant_without_importing_it():
    import subprocess
    import sys

    code = ("import sys; from havarti.config import load_settings; "
            "print(load_settings({}).primary_upstream, 'pypi_simple' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [PYPI_SIMPLE_ENDPOINT, "False"]


@pytest.mark.parametrize("variable,url", [
    ("DB_URI", "mysql://root:hunter2@db/havarti"),
    ("DATABASE_URL", "mysql+pymysql://root:hunter2@db/havarti"),
    ("DATABASE_URL", "oracle://scott:hunter2@db/havarti"),
])
def test_other_databases_are_refused_by_name_in_one_line_exit_2(tmp_path, variable, url):
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: url})
    assert "only SQLite and PostgreSQL are supported" in str(caught.value)
    result = CliRunner().invoke(main, ["serve"], env={variable: url,
                                                      "PACKAGE_CACHE": str(tmp_path / "d")})
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and "only SQLite and PostgreSQL are supported" in line
    # Not the driver's ImportError, and never the password.
    assert "MySQLdb" not in line and "No module" not in line and "hunter2" not in line
    assert line.startswith(f"havarti: configuration error: {variable}: ")


@pytest.mark.parametrize("url", ["sqlite:////tmp/h.db", "postgresql://u@db/h",
                                 "postgresql+psycopg://u@db/h", "postgres://u@db/h"])
def test_sqlite_and_postgresql_urls_are_accepted(url):
    assert load_settings({"DB_URI": url}).db_uri


def test_honcho_is_a_deploy_extra_that_the_test_extra_includes():
    import tomllib

    project = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    assert [r.split(">")[0] for r in extras["deploy"]] == ["honcho"]
    assert "havarti[deploy]" in extras["test"]
    assert not any(r.startswith("honcho") for r in extras["test"] + project["dependencies"])
    assert "pip install -e '.[deploy]'" in README.read_text()
