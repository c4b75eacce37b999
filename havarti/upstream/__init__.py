"""The upstream index adapter: one pooled HTTP client; pages read bounded, identified by digest."""

from havarti.upstream.client import PageResponse, UpstreamClient

__all__ = ["PageResponse", "UpstreamClient"]
