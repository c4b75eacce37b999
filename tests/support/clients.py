"""Real clients: pip and uv in a venv the suite makes once, twine and uv publish."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import clean_env


def uv_binary() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


@dataclass
class Clients:
    """Installs into throwaway target folders, so tests never share installed state."""

    venv: Path
    work: Path

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    def run(self, args: list[str], env: dict[str, str] | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=clean_env(env), capture_output=True, text=True,
                              timeout=timeout)

    def _target(self) -> Path:
        target = Path(os.path.join(self.work, f"target-{os.urandom(4).hex()}"))
        target.mkdir(parents=True)
        return target

    def pip_install(self, index_url: str, *requirements: str, extra: list[str] | None = None,
                    env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], Path]:
        target = self._target()
        result = self.run([self.python, "-m", "pip", "install", "--no-cache-dir",
                           "--disable-pip-version-check", "--target", str(target),
                           "-i", index_url, *(extra or []), *requirements], env=env)
        return result, target

    def uv_install(self, index_url: str, *requirements: str, extra: list[str] | None = None,
                   env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], Path]:
        target = self._target()
        result = self.run([uv_binary(), "pip", "install", "--no-cache", "--python", self.python,
                           "--target", str(target), "--index-url", index_url,
                           *(extra or []), *requirements], env=env)
        return result, target

    def twine_upload(self, url: str, password: str, *files: Path) -> subprocess.CompletedProcess[str]:
        return self.run([sys.executable, "-m", "twine", "upload", "--non-interactive",
                         "--disable-progress-bar", "--repository-url", url, "-u", "havarti",
                         "-p", password, *map(str, files)])

    def uv_publish(self, url: str, password: str, *files: Path) -> subprocess.CompletedProcess[str]:
        return self.run([uv_binary(), "publish", "--publish-url", url, "-u", "havarti",
                         "-p", password, *map(str, files)])


def installed_version(target: Path, module: str) -> str | None:
    init = target / module / "__init__.py"
    if not init.exists():
        return None
    namespace: dict[str, str] = {}
    exec(init.read_text(), namespace)
    return namespace.get("__version__")


def make_venv(path: Path) -> Path:
    if not (path / "bin" / "python").exists():
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    return path
