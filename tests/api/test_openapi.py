"""The OpenAPI document: 3.1, every endpoint, examples, problem+json errors with the type URIs."""

from __future__ import annotations

from api.problems import PROBLEM_TYPES


def test_openapi_document(client):
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.1")
    paths = doc["paths"]
    for path, method in [("/v1/customers/{customer_id}", "get"), ("/v1/customers/{customer_id}/accounts", "get"),
                         ("/v1/accounts/{account_id}", "get"), ("/v1/accounts/{account_id}/balance", "get"),
                         ("/v1/accounts/{account_id}/transactions", "get"), ("/v1/transfers", "post"),
                         ("/v1/transfers/{reference}", "get"), ("/healthz", "get"), ("/readyz", "get"),
                         ("/metrics", "get")]:
        assert method in paths[path], path
    for p in PROBLEM_TYPES:
        assert p.uri in doc["info"]["description"]
    assert "Problem" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    balance = paths["/v1/accounts/{account_id}/balance"]["get"]
    assert balance["responses"]["200"]["content"]["application/json"]["example"]["ledger"]["amount"] == "2500.00"
    for status in ("401", "403", "404", "422", "429", "502", "503", "504"):
        assert "application/problem+json" in balance["responses"][status]["content"], status
    assert doc["components"]["securitySchemes"]["bearer"]["bearerFormat"] == "JWT"
    post = paths["/v1/transfers"]["post"]
    body_schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["$ref"].endswith("TransferRequest")
    req = doc["components"]["schemas"]["TransferRequest"]
    assert req["additionalProperties"] is False and req["examples"]
    params = {p["name"] for p in paths["/v1/accounts/{account_id}/transactions"]["get"]["parameters"]}
    assert {"from", "to", "limit", "cursor", "X-On-Behalf-Of"} <= params


def test_docs_page(client):
    r = client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
