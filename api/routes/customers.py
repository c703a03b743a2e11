"""``/v1/customers``: the caller's customer record and its accounts (scope ``accounts:read``)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from starlette.responses import Response

from api.auth import ACCOUNTS_READ, Authenticator, Caller
from api.problems import openapi_responses
from api.routes import json_response
from api.schemas import ACCOUNT_EXAMPLE, CUSTOMER_EXAMPLE, ID_PATTERN, AccountList, example
from api.services import Services
from canonical import Customer

__all__ = ["router"]

CustomerId = Annotated[str, Path(pattern=ID_PATTERN, description="the customer id", examples=["C0000001"])]
_ERRORS = openapi_responses(400, 401, 403, 404, 422, 429, 502, 503, 504)


def router(services: Services, auth: Authenticator) -> APIRouter:
    r = APIRouter(prefix="/v1/customers", tags=["customers"])
    ReadCaller = Annotated[Caller, Depends(auth.require(ACCOUNTS_READ))]

    @r.get("/{customer_id}", response_model=Customer, summary="A customer",
           description="The customer record. Only the caller's own customer (or, for admin tokens, the one in "
                       "X-On-Behalf-Of); any other id is a 404. Scope: `accounts:read`.",
           responses={200: example(CUSTOMER_EXAMPLE), **_ERRORS})
    def get_customer(customer_id: CustomerId, caller: ReadCaller) -> Response:
        return json_response(services.customers.get(caller, customer_id))

    @r.get("/{customer_id}/accounts", response_model=AccountList, summary="A customer's accounts",
           description="Every account of the customer, ordered by id. Scope: `accounts:read`.",
           responses={200: example({"items": [ACCOUNT_EXAMPLE]}), **_ERRORS})
    def list_accounts(customer_id: CustomerId, caller: ReadCaller) -> Response:
        return json_response(AccountList(items=services.customers.accounts(caller, customer_id)))

    return r
