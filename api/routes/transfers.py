"""``/v1/transfers``: post a transfer (scope ``transfers:write``), look one up by reference
(``transfers:write`` or ``transactions:read``).

With a store configured (``services.exactly_once``), ``Idempotency-Key`` is required and honoured
(see :mod:`api.services.exactly_once`); without one, each POST is posted once under a fresh reference.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path
from starlette.responses import Response

from api.auth import TRANSACTIONS_READ, TRANSFERS_WRITE, Authenticator, Caller
from api.problems import BAD_REQUEST, CONFLICT, KEY_REUSED, ProblemError, openapi_responses
from api.routes import json_response
from api.schemas import ID_PATTERN, TRANSFER_EXAMPLE, TransferRequest, example
from api.services import Services
from api.services.exactly_once import KeyInFlight, KeyRequired, KeyReused
from canonical import Transfer

__all__ = ["KEY_REUSED", "router"]


_POST_DESCRIPTION = (
    "Posts one transfer from one of the caller's accounts, exactly once per `Idempotency-Key` (required when the "
    "facade has a store; keys are scoped to the customer and kept at least 7 days). The answer is the posting "
    "(201, `status: posted`) with its `reference`; `Location` points at it. A business rejection is a 422 "
    "`rejected` problem with the core's `reason_code` (e.g. R006 insufficient funds). The same key with the same "
    "body replays the stored answer byte for byte (`Idempotent-Replayed: true`); with another body it is a 422 "
    "`idempotency-key-reused`; while the first request is still running, 409 `conflict`. When the core's answer "
    "is lost and the core cannot be asked yet, the answer is 202 with `status: unknown` and `Location`: GET it "
    "(or retry with the same key) for the final outcome, which a replay then returns. Without a store the key is "
    "ignored and a lost answer is a problem with `outcome_unknown: true` and the `reference`. "
    "Scope: `transfers:write`.")

Reference = Annotated[str, Path(pattern=ID_PATTERN, description="the transfer's reference",
                                examples=["CB5F3A9C01D2E4B7"])]


def router(services: Services, auth: Authenticator) -> APIRouter:
    r = APIRouter(prefix="/v1/transfers", tags=["transfers"])
    WriteCaller = Annotated[Caller, Depends(auth.require(TRANSFERS_WRITE))]
    ReadCaller = Annotated[Caller, Depends(auth.require(TRANSFERS_WRITE, TRANSACTIONS_READ, mode="any"))]

    @r.post("", status_code=201, response_model=Transfer, summary="Post a transfer",
            description=_POST_DESCRIPTION,
            responses={201: example(TRANSFER_EXAMPLE),
                       202: {"description": "outcome not known yet (`status: unknown`); see `Location`"},
                       **openapi_responses(400, 401, 403, 404, 409, 413, 422, 429, 502, 503, 504)})
    def post_transfer(
        body: TransferRequest,
        caller: WriteCaller,
        idempotency_key: Annotated[str | None, Header(
            alias="Idempotency-Key", max_length=255,
            description="a unique key per intended transfer (e.g. a UUID); required when the facade has a store")
        ] = None,
    ) -> Response:
        exactly_once = services.exactly_once
        if exactly_once is None:
            transfer = services.transfers.post(caller, body)
            return json_response(transfer, 201, {"Location": f"/v1/transfers/{transfer.reference}"})
        try:
            reply = exactly_once.post(caller, body, idempotency_key)
        except KeyRequired:
            raise ProblemError(BAD_REQUEST, "The Idempotency-Key header is required.") from None
        except KeyReused:
            raise ProblemError(KEY_REUSED, "This Idempotency-Key was used with a different request body.") from None
        except KeyInFlight:
            raise ProblemError(CONFLICT, "A request with this Idempotency-Key is still being processed; "
                                         "retry later.", headers={"Retry-After": "1"}) from None
        return Response(reply.body, status_code=reply.status, headers=dict(reply.headers))

    @r.get("/{reference}", response_model=Transfer, summary="A transfer",
           description="The caller's posting under `reference` (the posted attempt when the core holds several). "
                       "Scope: `transfers:write` or `transactions:read`.",
           responses={200: example(TRANSFER_EXAMPLE), **openapi_responses(400, 401, 403, 404, 422, 429, 502, 503,
                                                                            504)})
    def get_transfer(reference: Reference, caller: ReadCaller) -> Response:
        service = services.exactly_once or services.transfers
        return json_response(service.get(caller, reference))

    return r
