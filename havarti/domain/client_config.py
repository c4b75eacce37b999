"""What pip, uv, poetry and twine need to use this index: one text for every place that shows it.

The home page and the ``havarti serve`` banner print the same lines and the
same configuration files, written from the URL users reach Havarti at.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


def trusted_host(base_url: str) -> str | None:
    """pip's ``trusted-host`` for a plain-HTTP index: the host name without the port
    (pip then trusts every port of it), or None for HTTPS, which needs none."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname:
        return None
    host = parts.hostname
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class ClientConfig:
    """The commands and files for each client, for the index at ``base`` (no trailing slash)."""

    base: str

    @property
    def simple(self) -> str:
        """The simple API's URL (the index URL every installer takes)."""
        return f"{self.base}/simple/"

    def pip_line(self, project: str = "requests") -> str:
        """One pip install of ``project`` from this index."""
        return f"pip install -i {self.simple} {project}"

    @property
    def pip_conf(self) -> str:
        """``pip.conf`` that makes this index pip's for every install."""
        lines = ["[global]", f"index-url = {self.simple}"]
        host = trusted_host(self.base)
        if host:
            lines.append(f"trusted-host = {host}")
        return "\n".join(lines)

    def uv_line(self, project: str = "requests") -> str:
        """One uv pip install of ``project`` from this index."""
        return f"uv pip install --index-url {self.simple} {project}"

    @property
    def uv_toml(self) -> str:
        """``uv.toml`` (or ``[[tool.uv.index]]``) making this index uv's default."""
        return f'[[index]]\nname = "havarti"\nurl = "{self.simple}"\ndefault = true'

    @property
    def poetry_line(self) -> str:
        """The poetry command adding this index as the primary source."""
        return f"poetry source add --priority=primary havarti {self.simple}"

    @property
    def twine_line(self) -> str:
        """An upload with twine (any username, the passcode as password)."""
        return f'twine upload --repository-url {self.base}/ -u havarti -p "$PASSCODE" dist/*'

    @property
    def uv_publish_line(self) -> str:
        """An upload with uv publish."""
        return f'uv publish --publish-url {self.base}/ -u havarti -p "$PASSCODE" dist/*'

    @property
    def pypirc(self) -> str:
        """The seed's ``.pypirc`` for ``twine upload -r havarti``."""
        return ("[distutils]\nindex-servers=\n    havarti\n\n"
                f"[havarti]\nrepository:{self.base}/\nusername:havarti\n"
                "password:<Your Secret Passcode>")
