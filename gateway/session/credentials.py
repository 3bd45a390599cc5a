"""A charger's Basic-auth password follows a new AuthorizationKey (issue 6, rotation).

Layer: session. When the CSMS sets SecurityCtrlr.BasicAuthPassword, the gateway sends
the charger ChangeConfiguration(AuthorizationKey); once the charger accepts it (or its
answer is lost), the key is what the charger will log in with, so the stored hashes
must follow, or the charger's next connection is refused.

The 1.6 key is the hex text of the password's bytes (1.6J §7, Security Whitepaper
§7.2), and 1.6J says the Basic-auth password is those raw bytes; some chargers send the
hex text itself. Both forms are accepted. The old hashes stay valid (``previous``) until
the charger logs in with the new password: a charger that reconnects before applying the
key, or whose answer was lost, is not locked out.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Final

from gateway.security import hash_password
from gateway.state import CredentialRecord, Store

log = logging.getLogger(__name__)

# Two rotations before the charger logs in leave three candidates; older ones go.
MAX_PREVIOUS: Final = 4


async def rotate_authorization_key(
    store: Store, station_id: str, key_hex: str, *, configured_hash: str | None = None
) -> None:
    """Make ``key_hex`` the station's password; keep the old ones until it logs in.

    ``configured_hash`` is the config file's password_hash, used as the old password when
    the store has no record yet. Raises ValueError when ``key_hex`` is not hex.
    """
    raw = bytes.fromhex(key_hex)
    # The KDF takes tens of ms: not on the event loop.
    current = (
        await asyncio.to_thread(hash_password, raw),
        await asyncio.to_thread(hash_password, key_hex),
    )
    record = await store.get_credential(station_id)
    if record is not None:
        previous = record.password_hashes + record.previous_hashes
    else:
        previous = () if configured_hash is None else (configured_hash,)
    await store.put_credential(
        CredentialRecord(station_id, current, previous[:MAX_PREVIOUS], updated_at=time.time())
    )
    log.info("stored the charger's new AuthorizationKey as its password (old one kept)")
