"""Mainframe return and reason codes, as the core's copybooks and WSDL document them."""

RC_OK = "0000"
RC_WARNING = "0004"
RC_REJECTED = "0008"  # business rejection: RSN_CD says why
RC_SYSTEM = "0012"  # system error: the request may or may not have been applied

REASONS: dict[str, str] = {
    "R001": "DEBIT ACCOUNT NOT FOUND",
    "R002": "CREDIT ACCOUNT NOT FOUND",
    "R003": "DEBIT ACCOUNT NOT OPEN",
    "R004": "CREDIT ACCOUNT NOT OPEN",
    "R005": "CURRENCY MISMATCH",
    "R006": "INSUFFICIENT FUNDS",
    "R007": "TRANSACTION LIMIT EXCEEDED",
    "R008": "INVALID AMOUNT",
    "R009": "SAME DEBIT AND CREDIT ACCOUNT",
    "R010": "INVALID TRANSACTION REFERENCE",
}

# Inquiry return codes (not found is a business outcome, not a system error).
RC_NOT_FOUND = "0008"
RSN_NOT_FOUND = "N001"
REASONS["N001"] = "RECORD NOT FOUND"

# Minor units per ISO 4217 currency the core carries.
CURRENCIES: dict[str, int] = {"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "JPY": 0}
