"""Local authorization list: SendLocalList, GetLocalListVersion (reference §2.14, §3.4).

Layer: translate (sans-I/O). Must not import asyncio, websockets, ``gateway.state``,
``gateway.session``, ``gateway.transport`` or ``gateway.metrics``.

Naming as in ``core``: ``<message>_req`` converts the CSMS's 2.0.1 request,
``<message>_conf`` the charger's 1.6 answer. Every 1.6 payload is built field by field.

A list 1.6 cannot hold exactly is never sent in part: the gateway answers Failed with
``statusInfo`` (a 2.0.1 ``StatusInfoReasonType`` code and a short explanation), and the
charger's list stays as it was. The CSMS then knows its list is not installed, instead
of believing a truncated or merged one is.
"""

from __future__ import annotations

from typing import Final

from gateway.ocppj import Payload
from gateway.translate.core import id_tag_info_from_token_info
from gateway.translate.types import (
    Context,
    Direction,
    OutboundCall,
    Outcome,
    Route,
    refused,
)

_ID_TAG_MAX: Final = 20  # 1.6 IdToken (idTag, parentIdTag) is CiString20 (1.6 §7.28)


# --- SendLocalList (2.0.1 D01; reference §2.4, §2.14, §3.4) -------------------------

# AuthorizationData entry, 2.0.1 -> 1.6:
#   idToken.idToken                  -> idTag (at most 20 characters, else Failed)
#   idTokenInfo                      -> idTagInfo (absent: a Differential update deletes
#                                       the entry, the same in both versions, §3.4)
#     status                         -> status (core.AUTHORIZATION_STATUS_V16, §2.4)
#     cacheExpiryDateTime            -> expiryDate
#     groupIdToken.idToken           -> parentIdTag (at most 20 characters, else Failed)
# Dropped, 1.6 has no field for them (core.id_tag_info_from_token_info):
#   idToken.type, idToken.additionalInfo, groupIdToken.type, groupIdToken.additionalInfo,
#   idTokenInfo.chargingPriority, .language1, .language2, .personalMessage, and
#   idTokenInfo.evseId (the token is valid on those EVSEs only: the 1.6 charger will
#   accept it on every connector), plus every customData.


def send_local_list_req(payload: Payload, ctx: Context) -> Outcome:
    forward: Payload = {
        "listVersion": payload["versionNumber"],
        "updateType": payload["updateType"],
    }
    entries: list[Payload] | None = payload.get("localAuthorizationList")
    if entries is None:  # Full without a list empties it, in both versions (§3.4)
        return Outcome(forward=OutboundCall("SendLocalList", forward))
    converted: list[Payload] = []
    first_of: dict[str, int] = {}  # casefolded idTag -> index of the entry that has it
    for index, entry in enumerate(entries):
        id_tag: str = entry["idToken"]["idToken"]
        if len(id_tag) > _ID_TAG_MAX:
            return refused(
                "Failed",
                "InvalidIdToken",
                f"localAuthorizationList[{index}]: an idToken of {len(id_tag)} characters "
                f"does not fit an OCPP 1.6 idTag (at most {_ID_TAG_MAX}); nothing was sent",
            )
        # 1.6 compares idTags case-insensitively and has no token type: two 2.0.1
        # entries (say the same value as ISO14443 and as Local) would be one 1.6 entry,
        # and which of them the charger keeps is undefined.
        previous = first_of.setdefault(id_tag.casefold(), index)
        if previous != index:
            return refused(
                "Failed",
                "UnsupportedParam",
                f"localAuthorizationList[{previous}] and [{index}] are the same OCPP 1.6 "
                "idTag (1.6 has no idToken type and ignores case); nothing was sent",
            )
        item: Payload = {"idTag": id_tag}
        info: Payload | None = entry.get("idTokenInfo")
        if info is not None:
            group: str | None = info.get("groupIdToken", {}).get("idToken")
            if group is not None and len(group) > _ID_TAG_MAX:
                return refused(
                    "Failed",
                    "InvalidIdToken",
                    f"localAuthorizationList[{index}]: a groupIdToken of {len(group)} "
                    f"characters does not fit an OCPP 1.6 parentIdTag (at most "
                    f"{_ID_TAG_MAX}); nothing was sent",
                )
            item["idTagInfo"] = id_tag_info_from_token_info(info)
        converted.append(item)
    forward["localAuthorizationList"] = converted
    return Outcome(forward=OutboundCall("SendLocalList", forward))


def send_local_list_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    status: str = result["status"]
    if status == "NotSupported":  # no 2.0.1 value (§2.14)
        return refused(
            "Failed",
            "UnsupportedRequest",
            "the OCPP 1.6 charger answered NotSupported: it has no local authorization list",
        )
    return Outcome(reply={"status": status})  # Accepted | Failed | VersionMismatch


# --- GetLocalListVersion (2.0.1 D02; reference §3.4) --------------------------------


def get_local_list_version_req(payload: Payload, ctx: Context) -> Outcome:
    return Outcome(forward=OutboundCall("GetLocalListVersion", {}))


def get_local_list_version_conf(result: Payload, request: Payload, ctx: Context) -> Outcome:
    version: int = result["listVersion"]
    # 1.6 -1: "does not support Local Authorization Lists" (1.6 §5.10). 2.0.1 has no
    # such value: 0 is "no list" (D02.FR.02/03). No other negative is a list version.
    return Outcome(reply={"versionNumber": max(version, 0)})


ROUTES: Final[dict[tuple[Direction, str], Route]] = {
    (Direction.CSMS_TO_CHARGER, "SendLocalList"): Route(
        "SendLocalList", send_local_list_req, send_local_list_conf
    ),
    (Direction.CSMS_TO_CHARGER, "GetLocalListVersion"): Route(
        "GetLocalListVersion", get_local_list_version_req, get_local_list_version_conf
    ),
}
