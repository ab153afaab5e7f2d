"""The Redis client of ``REDIS_URL`` (one per URL and process), or None without Redis."""

from __future__ import annotations

from django.conf import settings

_CLIENTS: dict[str, object] = {}


def redis_client():
    url = settings.REDIS_URL
    if not url:
        return None
    if url not in _CLIENTS:
        import redis

        _CLIENTS[url] = redis.Redis.from_url(url)
    return _CLIENTS[url]
