"""The policy matcher: names as PEP 503 normalises them, PEP 440 specifiers, filename globs,
allow-list mode, and what `policy check` says about requirements."""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement

from havarti.config import ConfigError, load_settings
from havarti.distributions import NamePattern
from havarti.domain.policy import Policy, Rule, rules_from_toml
from havarti.errors import InvalidRequest
from havarti.wiring import check_policy_file


def deny(match: str = "", filename: str = "", reason: str = "") -> Rule:
    return Rule.parse("deny", match, filename, reason)


def allow(match: str = "", filename: str = "") -> Rule:
    return Rule.parse("allow", match, filename)


@pytest.mark.parametrize("written", ["evil-pkg", "Evil_Pkg", "evil.pkg", "EVIL--pkg"])
def test_names_match_however_they_are_written(written):
    policy = Policy((deny(written, reason="malware"),))
    assert policy.project_refusal("evil-pkg") == "evil-pkg is denied by policy: deny evil-pkg (malware)"
    assert policy.file_refusal("evil-pkg", "1.0", "evil_pkg-1.0-py3-none-any.whl") is not None
    assert policy.project_refusal("evil-pkg2") is None
    assert policy.project_refusal("good") is None


@pytest.mark.parametrize("version,denied", [
    ("1.26.4", True), ("1.25", True), ("1.26.5", False), ("2.0.0", False),
    ("1.26.4rc1", True),  # pre-releases are judged too
    ("1.26.5rc1", False),  # PEP 440: "<V" leaves out V's own pre-releases
    ("1.26.4.post1", True), ("not-a-version", False), (None, False),
])
def test_version_specifiers(version, denied):
    policy = Policy((deny("urllib3<1.26.5", reason="CVE-2021-33503"),))
    refusal = policy.file_refusal("urllib3", version, f"urllib3-{version}.tar.gz")
    assert (refusal is not None) == denied
    if denied:
        assert "CVE-2021-33503" in str(refusal) and "urllib3<1.26.5" in str(refusal)
    # A rule on versions judges files, not the project.
    assert policy.project_refusal("urllib3") is None


def test_specifier_ranges_and_exclusions():
    policy = Policy((deny("requests>=2.0,!=2.31.0,<3"),))
    assert policy.file_refusal("requests", "2.30.0", "f") is not None
    assert policy.file_refusal("requests", "2.31.0", "f") is None
    assert policy.file_refusal("requests", "1.9", "f") is None


def test_filename_globs_alone_and_with_a_project():
    policy = Policy((deny(filename="*-win32.whl", reason="no 32-bit"),
                     deny("numpy", filename="*.tar.gz")))
    assert policy.file_refusal("any", "1.0", "any-1.0-cp38-cp38-win32.whl") is not None
    assert policy.file_refusal("any", "1.0", "Any-1.0-CP38-cp38-WIN32.whl") is not None
    assert policy.file_refusal("any", "1.0", "any-1.0.tar.gz") is None
    assert policy.file_refusal("numpy", "1.0", "numpy-1.0.tar.gz") is not None
    assert policy.file_refusal("numpy", "1.0", "numpy-1.0-py3-none-any.whl") is None
    assert policy.project_refusal("numpy") is None


def test_prefix_patterns():
    policy = Policy((deny("acme-*"),))
    assert policy.project_refusal("acme-core") is not None
    assert policy.project_refusal("acme") is None
    assert policy.project_refusal("acmecorp") is None


def test_allow_list_mode():
    policy = Policy((allow("numpy"), allow("SciPy"), allow("django>=4")))
    assert policy.allow_list
    assert policy.project_refusal("numpy") is None
    assert policy.project_refusal("scipy") is None
    assert "not on the policy's allow-list" in str(policy.project_refusal("requests"))
    assert policy.file_refusal("django", "4.2", "django-4.2.tar.gz") is None
    assert "allow-list" in str(policy.file_refusal("django", "3.2", "django-3.2.tar.gz"))
    assert policy.touches("anything")


def test_deny_wins_over_allow():
    policy = Policy((allow("numpy"), deny("numpy==1.0")))
    assert policy.file_refusal("numpy", "1.0", "numpy-1.0.tar.gz") is not None
    assert policy.file_refusal("numpy", "1.1", "numpy-1.1.tar.gz") is None


def test_no_rules_touch_nothing():
    policy = Policy()
    assert not policy.touches("numpy")
    assert policy.file_refusal("numpy", "1.0", "numpy-1.0.tar.gz") is None
    assert Policy((deny("a"),)).digest != Policy((deny("b"),)).digest
    assert Policy((deny("a"),)).digest == Policy((deny("A"),)).digest


@pytest.mark.parametrize("action,match,filename,words", [
    ("block", "x", "", "deny or allow"),
    ("deny", "", "", "needs a project"),
    ("deny", "urllib3<<1", "", "not a version specifier"),
    ("deny", "no good name!", "", "not a version specifier"),
    ("deny", "-x", "", "not a project name"),
    ("deny", "", "dir/*.whl", "no slashes"),
])
def test_bad_rules_say_why(action, match, filename, words):
    with pytest.raises(InvalidRequest, match=words):
        Rule.parse(action, match, filename)


def test_requirements_check():
    policy = Policy((deny("evil-pkg"), deny("urllib3<1.26.5", reason="CVE"),
                     deny(filename="*-win32.whl")))
    assert "denied by policy" in str(policy.check(Requirement("Evil_Pkg>=1")))
    assert "urllib3==1.26.0 is denied" in str(policy.check(Requirement("urllib3==1.26.0")))
    assert policy.check(Requirement("urllib3==1.26.18")) is None
    assert "some files of urllib3" in str(policy.check(Requirement("urllib3>=1.20")))
    assert policy.check(Requirement("requests")) is None
    listed = Policy((allow("numpy"),))
    assert listed.check(Requirement("numpy")) is None
    assert "allow-list" in str(listed.check(Requirement("pandas")))


def test_policy_file_forms(tmp_path):
    rules = rules_from_toml({"deny": ["evil-pkg", {"match": "urllib3<1.26.5", "reason": "CVE"},
                                      {"filename": "*.exe"}], "allow": ["numpy"]})
    assert [r.describe() for r in rules] == ["deny evil-pkg", "deny urllib3<1.26.5 (CVE)",
                                             "deny filename *.exe", "allow numpy"]
    with pytest.raises(InvalidRequest, match="unknown key 'block'"):
        rules_from_toml({"block": ["x"]})
    with pytest.raises(InvalidRequest, match="deny entry 1"):
        rules_from_toml({"deny": [{"match": 1}]})
    good = tmp_path / "policy.toml"
    good.write_text('deny = ["evil-pkg"]\n')
    check_policy_file(load_settings({"POLICY_FILE": str(good)}))
    bad = tmp_path / "bad.toml"
    bad.write_text('deny = ["urllib3<<1"]\n')
    with pytest.raises(ConfigError, match="not a version specifier"):
        check_policy_file(load_settings({"POLICY_FILE": str(bad)}))
    with pytest.raises(ConfigError, match="POLICY_FILE"):
        check_policy_file(load_settings({"POLICY_FILE": str(tmp_path / "missing.toml")}))
    with pytest.raises(ConfigError, match="RESERVED_NAMES"):
        load_settings({"RESERVED_NAMES": "ok, bad!name"})
    assert load_settings({"RESERVED_NAMES": "Acme_*"}).reserved_names == ("acme-*",)
    assert NamePattern.parse("acme-*").covers(NamePattern.parse("acme-x*"))
