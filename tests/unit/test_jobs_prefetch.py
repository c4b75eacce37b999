"""Prefetch planning: reading requirements and choosing files, no services needed."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from havarti.domain.platforms import Platform
from havarti.domain.prefetch import PrefetchError, Target, choose_files, read_requirements
from havarti.records import PageFile


def page_file(filename: str, version: str, requires_python: str | None = None,
              yanked: bool | str = False) -> PageFile:
    return PageFile(filename=filename, url=f"../../files/x/{filename}", hashes={},
                    version=version, requires_python=requires_python, yanked=yanked)


def names(files: list[PageFile]) -> list[str]:
    return sorted(f.filename for f in files)


PY311 = Target.build(["3.11"])


def test_requirements_file_names_pins_comments_options_and_nested(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("idna>=3\n")
    (tmp_path / "requirements.txt").write_text(
        "-i http://example.invalid/simple/\n"
        "# a comment\n"
        "\n"
        "requests==2.31.0  # pinned\n"
        "Flask[async] >=3.0,<4 ; python_version >= '3.8'\n"
        "certifi==2024.2.2 --hash=sha256:abc\n"
        "-r base.txt\n")
    found = read_requirements(tmp_path / "requirements.txt")
    assert [(r.name, str(r.specifier)) for r in found] == [
        ("requests", "==2.31.0"), ("Flask", "<4,>=3.0"), ("certifi", "==2024.2.2"),
        ("idna", ">=3")]


def test_pylock_toml_pins_each_package(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text('lock-version = "1.0"\n[[packages]]\nname = "attrs"\nversion = "23.2.0"\n'
                    '[[packages]]\nname = "six"\nversion = "1.16.0"\n')
    assert [str(r) for r in read_requirements(lock)] == ["attrs==23.2.0", "six==1.16.0"]


@pytest.mark.parametrize(("text", "reason"), [
    ("requests\nnot a requirement!!\n", "requirements.txt:2: not a requirement"),
    ("pkg @ https://example.invalid/pkg.whl\n", "pkg is a direct URL"),
])
def test_unreadable_requirement_is_refused_with_its_line(tmp_path: Path, text: str,
                                                         reason: str) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text(text)
    with pytest.raises(PrefetchError, match=reason):
        read_requirements(path)


def test_missing_requirements_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PrefetchError, match="No such file"):
        read_requirements(tmp_path / "absent.txt")


def test_requirements_including_themselves_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("six\n-r b.txt\n")
    (tmp_path / "b.txt").write_text("-r a.txt\n")
    with pytest.raises(PrefetchError, match="includes itself"):
        read_requirements(tmp_path / "a.txt")


def test_broken_pylock_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "pylock.toml"
    lock.write_text("[[packages]]\nversion = 1\n")
    with pytest.raises(PrefetchError, match="not a readable pylock.toml"):
        read_requirements(lock)


@pytest.mark.parametrize("raw", ["3", "three.eleven", "3.11.2"])
def test_bad_python_version_is_refused(raw: str) -> None:
    with pytest.raises(PrefetchError, match="expected MAJOR.MINOR"):
        Target.build([raw])


def test_newest_allowed_version_wins_and_yanked_is_skipped() -> None:
    files = [page_file("demo-1.0-py3-none-any.whl", "1.0"),
             page_file("demo-2.0-py3-none-any.whl", "2.0"),
             page_file("demo-3.0-py3-none-any.whl", "3.0", yanked="broken"),
             page_file("demo-4.0b1-py3-none-any.whl", "4.0b1")]
    assert names(choose_files(files, SpecifierSet(""), PY311)) == ["demo-2.0-py3-none-any.whl"]
    assert names(choose_files(files, SpecifierSet("<2"), PY311)) == ["demo-1.0-py3-none-any.whl"]
    assert names(choose_files(files, SpecifierSet("==4.0b1"), PY311)) == [
        "demo-4.0b1-py3-none-any.whl"]
    assert choose_files(files, SpecifierSet(">5"), PY311) == []


def test_requires_python_excludes_files_for_other_pythons() -> None:
    files = [page_file("demo-1.0-py3-none-any.whl", "1.0"),
             page_file("demo-2.0-py3-none-any.whl", "2.0", requires_python=">=3.12")]
    assert names(choose_files(files, SpecifierSet(""), PY311)) == ["demo-1.0-py3-none-any.whl"]
    assert names(choose_files(files, SpecifierSet(""), Target.build(["3.12"]))) == [
        "demo-2.0-py3-none-any.whl"]


def test_wheels_fit_python_and_platform_else_the_sdist() -> None:
    files = [page_file("demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "1.0"),
             page_file("demo-1.0-cp311-cp311-win_amd64.whl", "1.0"),
             page_file("demo-1.0-cp311-cp311-macosx_11_0_arm64.whl", "1.0"),
             page_file("demo-1.0-cp311-cp311-musllinux_1_1_x86_64.whl", "1.0"),
             page_file("demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "1.0"),
             page_file("demo-1.0.tar.gz", "1.0")]
    linux = Target.build(["3.11"], ["manylinux_2_17_x86_64"])
    assert names(choose_files(files, SpecifierSet(""), linux)) == [
        "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"]
    # The default is what Pythons on x86-64 Linux install: not Windows', macOS' or musl's wheels.
    assert names(choose_files(files, SpecifierSet(""), PY311)) == [
        "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"]
    both = Target.build(["3.11", "3.12"], ["manylinux_2_17_x86_64", "win_amd64"])
    assert names(choose_files(files, SpecifierSet(""), both)) == [
        "demo-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", "demo-1.0-cp311-cp311-win_amd64.whl",
        # No Windows wheel for 3.12: the sdist is what pip would build from there.
        "demo-1.0-cp312-cp312-manylinux_2_17_x86_64.whl", "demo-1.0.tar.gz"]
    assert names(choose_files(files, SpecifierSet(""), Target.build(["3.11"], ["macosx_14_0_arm64"]))) == [
        "demo-1.0-cp311-cp311-macosx_11_0_arm64.whl"]
    # No wheel for 3.10: the sdist.
    assert names(choose_files(files, SpecifierSet(""), Target.build(["3.10"]))) == [
        "demo-1.0.tar.gz"]


def test_each_glibc_level_gets_the_wheel_pip_there_prefers_and_no_more() -> None:
    files = [page_file("native-2.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "2.0"),
             page_file("native-2.0-cp39-abi3-manylinux_2_28_x86_64.whl", "2.0"),
             page_file("native-2.0-cp311-abi3-manylinux_2_28_x86_64.whl", "2.0"),
             page_file("native-2.0-cp37-abi3-manylinux_2_28_x86_64.whl", "2.0"),
             page_file("native-2.0-cp311-cp311-manylinux_2_34_aarch64.whl", "2.0"),
             page_file("native-2.0-cp39-abi3-manylinux_2_34_x86_64.whl", "2.0"),
             page_file("native-2.0.tar.gz", "2.0")]
    # glibc 2.17-2.27 takes the 2014 wheel; 2.28-2.33 the cp311 one (the interpreter ranks
    # first); 2.34 and newer still that one, as pip would: the 2_34 wheel is never chosen.
    assert names(choose_files(files, SpecifierSet(""), PY311)) == [
        "native-2.0-cp311-abi3-manylinux_2_28_x86_64.whl",
        "native-2.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]
    # An older system's family stops at its own glibc.
    assert names(choose_files(files, SpecifierSet(""), Target.build(["3.11"], ["manylinux2014_x86_64"]))) == [
        "native-2.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"]
    # For Python 3.10 the cp311 wheel does not fit: the 2_34 one wins on the newest systems.
    assert names(choose_files(files, SpecifierSet(""), Target.build(["3.10"]))) == [
        "native-2.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "native-2.0-cp39-abi3-manylinux_2_28_x86_64.whl",
        "native-2.0-cp39-abi3-manylinux_2_34_x86_64.whl"]


@pytest.mark.parametrize(("tag", "uv_name"), [
    ("manylinux_2_28_x86_64", "x86_64-manylinux_2_28"),
    ("manylinux_2_30_x86_64", "x86_64-manylinux_2_28"),
    ("manylinux2014_aarch64", "aarch64-manylinux_2_17"),
    ("musllinux_1_2_x86_64", "x86_64-unknown-linux-musl"),
    ("macosx_11_0_arm64", "aarch64-apple-darwin"),
    ("win_amd64", "x86_64-pc-windows-msvc"),
])
def test_platform_tags_become_the_resolvers_platforms(tag: str, uv_name: str) -> None:
    assert Platform.parse(tag).uv_name == uv_name
    assert tag in Platform.parse(tag).accepts


@pytest.mark.parametrize("raw", ["any", "linux", "manylinux_2_17_ppc64le", "win_x86"])
def test_unknown_platform_is_refused(raw: str) -> None:
    with pytest.raises(PrefetchError, match=f"--platform '{raw}': "):
        Target.build(["3.11"], [raw])
