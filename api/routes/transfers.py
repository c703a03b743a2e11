"""``/v1/transfers``: post a transfer (scope ``transfers:write``), look one up by reference
(``transfers:write`` or ``transactions:read``)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path
from starlette.responses import Response

from api.auth import TRANSACTIONS_READ, TRANSFERS_WRITE, Authenticator, Caller
from api.problems import openapi_responses
from api.routes import json_response
from api.schemas import ID_PATTERN, TRANSFER_EXAMPLE, TransferRequest, example
from api.services import Services
from canonical import Transfer

__all__ = ["router"]

Reference = Annotated[str, Path(pattern=ID_PATTERN, description="the transfer's reference",
                                examples=["CB5F3A9C01D2E4B7"])]


def router(services: Services, auth: Authenticator) -> APIRouter:
    r = APIRouter(prefix="/v1/transfers", tags=["transfers"])
    WriteCaller = Annotated[Caller, Depends(auth.require(TRANSFERS_WRITE))]
    ReadCaller = Annotated[Caller, Depends(auth.require(TRANSFERS_WRITE, TRANSACTIONS_READ, mode="any"))]

    @r.post("", status_code=201, response_model=Transfer, summary="Post a transfer",
            description="Posts one transfer from one of the caller's accounts. The answer is the posting "
                        "(`status: posted`) with its `reference`; `Location` points at it. A business rejection "
                        "is a 422 `rejected` problem with the core's `reason_code` (e.g. R006 insufficient funds). "
                        "When the core's answer is lost the problem says `outcome_unknown: true` and gives the "
                        "`reference`: look it up with GET before sending again. `Idempotency-Key` is accepted and "
                        "not yet used. Scope: `transfers:write`.",
            responses={201: example(TRANSFER_EXAMPLE), **openapi_responses(400, 401, 403, 404, 413, 422, 429, 502,
                                                                             503, 504)})
    def post_transfer(
        body: TransferRequest,
        caller: WriteCaller,
        idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255,
                                                      description="accepted; exactly-once comes later")] = None,
    ) -> Response:
        transfer = services.transfers.post(caller, body)
        return json_response(transfer, 201, {"Location": f"/v1/transfers/{transfer.reference}"})

    @r.get("/{reference}", response_model=Transfer, summary="A transfer",
           description="The caller's posting under `reference` (the posted attempt when the core holds several). "
                       "Scope: `transfers:write` or `transactions:read`.",
           responses={200: example(TRANSFER_EXAMPLE), **openapi_responses(400, 401, 403, 404, 422, 429, 502, 503,
                                                                            504)})
    def get_transfer(reference: Reference, caller: ReadCaller) -> Response:
        return json_response(services.transfers.get(caller, reference))

    return r
