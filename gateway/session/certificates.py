"""GetInstalledCertificateIds and DeleteCertificate: answers that take several charger
CALLs.

Layer: session. ``translate.security`` plans the CALLs and merges their answers; this
module sends them in order. A 1.6 charger asks for one certificate type per
GetInstalledCertificateIds, and keeps ISO 15118 certificates behind the Plug & Charge
DataTransfer tunnel, so one 2.0.1 request may need a CALL per type plus a tunnelled
one; a DeleteCertificate's hash does not say which store holds the certificate, so the
security extension is asked first and the tunnel while it is not found.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.ocppj import Payload
from gateway.session.calls import OutgoingCalls
from gateway.session.transactions import Reply
from gateway.translate import security
from gateway.translate.types import Context, OutboundCall


class CertificateDesk:
    def __init__(
        self,
        *,
        to_charger: OutgoingCalls,
        context: Callable[[], Context],
        check_charger_answer: Callable[[str, Payload], None],
    ) -> None:
        self._to_charger = to_charger
        self._context = context
        self._check_charger_answer = check_charger_answer

    async def _ask(self, call: OutboundCall) -> Payload:
        # A CALLERROR or a timeout ends the whole request with it, as for a single CALL.
        answer = await self._to_charger.call(call.action, call.payload)
        self._check_charger_answer(call.action, answer)
        return answer

    async def get_installed_certificate_ids(self, request: Payload) -> Reply:
        ctx = self._context()
        answers = [
            (query, await self._ask(query))
            for query in security.installed_certificate_queries(request, ctx)
        ]
        return security.installed_certificate_ids_response(request, answers, ctx), ()

    async def delete_certificate(self, request: Payload) -> Reply:
        ctx = self._context()
        replies = []
        for attempt in security.delete_certificate_attempts(request, ctx):
            reply = security.deletion_reply(attempt, await self._ask(attempt))
            if security.deletion_settled(reply):
                return reply, ()
            replies.append(reply)
        return security.deletion_response(replies, ctx), ()
