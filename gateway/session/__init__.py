"""Per-station sessions: correlation, queues, timeouts, ordering (asyncio, no sockets)."""
