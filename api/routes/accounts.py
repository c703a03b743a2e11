"""``/v1/accounts``: one account, its balance (scope ``accounts:read``) and its transactions
(scope ``transactions:read``, cursor-paginated)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from starlette.responses import Response

from api.auth import ACCOUNTS_READ, TRANSACTIONS_READ, Authenticator, Caller
from api.cursors import MAX_CURSOR_LENGTH
from api.problems import openapi_responses, validation_problem
from api.routes import json_response
from api.schemas import (
    ACCOUNT_EXAMPLE,
    BALANCE_EXAMPLE,
    ID_PATTERN,
    TRANSACTION_PAGE_EXAMPLE,
    IsoDate,
    TransactionPage,
    example,
)
from api.services import Services
from api.settings import Settings
from canonical import Account, Balance

__all__ = ["router"]

AccountId = Annotated[str, Path(pattern=ID_PATTERN, description="the account id", examples=["110000000543"])]
_ERRORS = openapi_responses(400, 401, 403, 404, 422, 429, 502, 503, 504)


def router(services: Services, auth: Authenticator, settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/v1/accounts", tags=["accounts"])
    AccountsCaller = Annotated[Caller, Depends(auth.require(ACCOUNTS_READ))]
    TransactionsCaller = Annotated[Caller, Depends(auth.require(TRANSACTIONS_READ))]
    cap = settings.limits.max_page_size
    default_limit = settings.limits.default_page_size

    @r.get("/{account_id}", response_model=Account, summary="An account",
           description="One of the caller's accounts; someone else's account is a 404. Scope: `accounts:read`.",
           responses={200: example(ACCOUNT_EXAMPLE), **_ERRORS})
    def get_account(account_id: AccountId, caller: AccountsCaller) -> Response:
        return json_response(services.accounts.get(caller, account_id))

    @r.get("/{account_id}/balance", response_model=Balance, summary="An account's balance",
           description="Ledger (booked) and available balance with the time they are valid for (`as_of`). "
                       "`stale: true` when the core did not answer and the figures come from a fallback "
                       "(replica or cache). Scope: `accounts:read`.",
           responses={200: example(BALANCE_EXAMPLE), **_ERRORS})
    async def get_balance(account_id: AccountId, caller: AccountsCaller) -> Response:
        # on the event loop: the SOAP balance call is awaited, no worker thread (the facade's hot path)
        return json_response(await services.accounts.abalance(caller, account_id))

    @r.get("/{account_id}/transactions", response_model=TransactionPage, summary="An account's transactions",
           description="Newest first, filtered on the booking date (`from`, `to`: inclusive, YYYY-MM-DD). Pass "
                       "`next_cursor` back as `cursor` (with the same filters) for the next page; a cursor that "
                       f"was altered or belongs to another listing is a 400. `limit`: 1..{cap}. "
                       "Scope: `transactions:read`.",
           responses={200: example(TRANSACTION_PAGE_EXAMPLE), **_ERRORS})
    def list_transactions(
        account_id: AccountId,
        caller: TransactionsCaller,
        from_date: Annotated[IsoDate | None, Query(alias="from", description="first booking date (inclusive)",
                                                   examples=["2026-11-01"])] = None,
        to_date: Annotated[IsoDate | None, Query(alias="to", description="last booking date (inclusive)",
                                                 examples=["2026-11-30"])] = None,
        limit: Annotated[int, Query(ge=1, le=cap, description=f"page size, 1..{cap}")] = default_limit,
        cursor: Annotated[str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the "
                                                                                      "previous page")] = None,
    ) -> Response:
        if from_date is not None and to_date is not None and from_date > to_date:
            raise validation_problem([{"loc": ["query", "from"], "msg": "from must not be after to",
                                       "type": "date_range"}])
        page = services.accounts.transactions(caller, account_id, from_date=from_date, to_date=to_date,
                                              limit=limit, cursor=cursor)
        return json_response(page)

    return r
