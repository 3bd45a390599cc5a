"""Who may charge while the CSMS is unreachable: the offline authorization policy.

Layer: session. The CSMS's answers about idTokens (Authorize, TransactionEvent) are kept
per station in the store's authorization cache (2.0.1 C10); while the CSMS cannot be
asked, ``offline_authorization`` decides: ``cache`` (default) accepts a token whose last
answer was Accepted and has not expired, as OCPP's own defaults do (1.6
LocalAuthorizeOffline with AllowOfflineTxForUnknownId false; 2.0.1 C12); ``accept``
accepts every token; ``reject`` none.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from gateway.ocppj import Payload
from gateway.state import StateError, Store
from gateway.translate import core

log = logging.getLogger(__name__)


class OfflineAuthorizer:
    def __init__(self, *, station_id: str, store: Store, policy: str) -> None:
        self._station_id = station_id
        self._store = store
        self._policy = policy  # cache | accept | reject

    async def tag_info(self, id_tag: str, *, trusted: bool) -> Payload:
        """1.6 idTagInfo for an idTag from the policy; ``trusted`` (the CSMS itself asked
        for this start) is always accepted."""
        if trusted or self._policy == "accept":
            return {"status": "Accepted"}
        if self._policy == "cache":
            info = await self._cached(id_tag)
            if info is not None and info.get("status") == "Accepted" and not _expired(info):
                return core.id_tag_info_from_token_info(info)
        return {"status": "Invalid"}

    async def verdict_on_record(self, id_tag: str) -> Payload | None:
        """What the CSMS last said about an idTag (1.6 idTagInfo), whatever the policy."""
        info = await self._cached(id_tag)
        return None if info is None else core.id_tag_info_from_token_info(info)

    async def _cached(self, id_tag: str) -> Payload | None:
        try:
            return await self._store.get_authorization(self._station_id, id_tag)
        except StateError:
            log.exception("cannot read the authorization cache")
            return None


def _expired(info: Payload) -> bool:
    expiry = info.get("cacheExpiryDateTime")
    if expiry is None:
        return False
    try:
        return datetime.fromisoformat(expiry) < datetime.now(UTC)
    except ValueError:
        return False
