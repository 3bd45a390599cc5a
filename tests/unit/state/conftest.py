"""Fixtures of the store tests: a real Redis server and a key prefix per test."""

from tests.redis_server import redis_prefix, redis_url

__all__ = ["redis_prefix", "redis_url"]
