"""The upstream index adapter: one pooled HTTP client, pages parsed with pypi-simple."""

from havarti.upstream.client import UpstreamClient, UpstreamFile, UpstreamResult

__all__ = ["UpstreamClient", "UpstreamFile", "UpstreamResult"]
