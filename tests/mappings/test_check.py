"""`check` and the loader: every problem reported as file:line:col with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from mappings.engine import MappingError, check_file, check_text, compile_file
from mappings.engine.schema import parse_spec

ROOT = Path(__file__).resolve().parents[2]
WSDL = ROOT / "adapters" / "wsdl" / "CoreBanking.wsdl"
COPYBOOKS = ROOT / "mappings" / "copybooks"

BALANCE = f"""\
name: test.balance
version: 1
source:
  kind: soap
  contract:
    wsdl: {WSDL}
    operation: BalanceInquiry
    element: BALANCE
target: Balance
direction: read
fields:
  - to: account_id
    from: ACCT-NO
    transforms: [trim]
  - to: ledger
    from: LEDGER-BAL
    transforms:
      - implied_decimal: {{scale: 2}}
      - money: {{currency: CURR-CD}}
  - to: available
    from: AVAIL-BAL
    transforms:
      - implied_decimal: 2
      - money: CURR-CD
  - to: as_of
    from: AS-OF-DT
    transforms:
      - date: CYYMMDD
examples:
  - name: ok
    input: {{ACCT-NO: "110000000543", CURR-CD: EUR, LEDGER-BAL: "+000000000012540",
             AVAIL-BAL: "+000000000012540", AS-OF-DT: "1261127"}}
    output:
      account_id: "110000000543"
      ledger: {{amount: "125.40", currency: EUR}}
      available: {{amount: "125.40", currency: EUR}}
      as_of: "2026-11-27"
      stale: false
"""


def diags(text: str) -> list[str]:
    return [str(d) for d in check_text(text, "m.yaml")]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_the_base_file_is_clean():
    assert diags(BALANCE) == []


def test_unknown_transform_with_hint_and_position():
    text = BALANCE.replace("transforms: [trim]", "transforms: [trimm]")
    [d] = diags(text)
    assert d == f"m.yaml:{line_of(text, 'trimm')}:18: unknown transform 'trimm' (did you mean trim?)"


def test_missing_top_level_key():
    text = BALANCE.replace("target: Balance\n", "")
    assert "m.yaml:1:1: the mapping file is missing the key 'target'" in diags(text)


def test_rule_without_to_points_at_the_rule():
    text = BALANCE.replace("  - to: account_id\n", "  - note: no target\n")
    found = diags(text)
    assert any(d.startswith(f"m.yaml:{line_of(text, 'no target')}:5: a field rule needs `to`") for d in found)
    assert any("Balance.account_id is required but no rule sets it" in d for d in found)


def test_wrong_target_type():
    text = BALANCE.replace("      - date: CYYMMDD\n", "      - trim\n")
    [d] = diags(text)
    assert d.startswith(f"m.yaml:{line_of(text, 'to: as_of')}:9: the rule produces str but Balance.as_of is "
                        "date or datetime")
    assert "(convert with the date transform" in d


def test_money_field_fed_a_decimal():
    text = BALANCE.replace("      - money: CURR-CD\n", "")
    [d] = diags(text)
    assert "the rule produces decimal but Balance.available is money (use the money transform" in d


def test_unknown_canonical_field_with_hint():
    text = BALANCE.replace("to: as_of", "to: as_off")
    found = diags(text)
    assert f"m.yaml:{line_of(text, 'as_off')}:9: to 'as_off': Balance has no field 'as_off' (did you mean as_of?)" \
        in found


def test_unknown_contract_field_with_hint():
    text = BALANCE.replace("from: ACCT-NO", "from: ACCT-NUM")
    [d] = diags(text)
    assert d.startswith(f"m.yaml:{line_of(text, 'ACCT-NUM')}:11: from 'ACCT-NUM':")
    assert "has no field 'ACCT-NUM' (did you mean ACCT-NO?)" in d


def test_side_field_of_a_transform_is_checked_too():
    text = BALANCE.replace("money: {currency: CURR-CD}", "money: {currency: CUR-CD}")
    [d] = diags(text)
    assert "money.currency 'CUR-CD'" in d and "(did you mean CURR-CD?)" in d


def test_unknown_target_model_and_operation():
    assert any("unknown target model 'Balanse' (did you mean Balance?)" in d
               for d in diags(BALANCE.replace("target: Balance", "target: Balanse")))
    assert any("no operation 'BalanceInquire'" in d and "did you mean BalanceInquiry?" in d
               for d in diags(BALANCE.replace("operation: BalanceInquiry", "operation: BalanceInquire")))


def test_bad_parameter_points_at_the_parameter():
    text = BALANCE.replace("implied_decimal: {scale: 2}", "implied_decimal: {scale: 2, sign: leading}")
    [d] = diags(text)
    assert "implied_decimal has no parameter 'sign'" in d and "(did you mean signed?)" in d
    assert d.startswith(f"m.yaml:{line_of(text, 'sign: leading')}:")


def test_bad_parameter_value_with_hint():
    text = BALANCE.replace("date: CYYMMDD", "date: CYMMDD")
    [d] = diags(text)
    assert "date.format must be one of" in d and "did you mean CYYMMDD?" in d


def test_unknown_keys_have_hints():
    found = diags(BALANCE.replace("direction: read", "direction: read\nexample: []"))
    assert any("unknown key 'example' in the mapping file (did you mean examples?)" in d for d in found)
    found = diags(BALANCE.replace("    from: ACCT-NO", "    form: ACCT-NO"))
    assert any("unknown key 'form' in a field rule (did you mean from?)" in d for d in found)


def test_yaml_syntax_error_has_a_line():
    [d] = diags(BALANCE.replace("  - to: as_of", "  - to: [as_of"))
    assert d.startswith("m.yaml:") and "not valid YAML" in d and d.split(":")[1] != "0"


def test_duplicate_keys_are_refused():
    found = diags(BALANCE.replace("    from: ACCT-NO\n", "    from: ACCT-NO\n    from: CURR-CD\n"))
    assert found and "not valid YAML" in found[0] and "duplicate" in found[0]


def test_code_values_must_be_enum_values():
    text = f"""\
name: test.account
version: 1
source:
  kind: soap
  contract: {{wsdl: {WSDL}, operation: AccountInquiry, element: ACCOUNT}}
target: Account
direction: read
fields:
  - {{to: id, from: ACCT-NO, transforms: [trim]}}
  - {{to: customer_id, from: CUST-NO, transforms: [trim]}}
  - to: status
    from: ACCT-STAT
    transforms:
      - code: {{map: {{A: opened, C: closed}}}}
  - {{to: product, constant: current}}
  - {{to: currency, from: CURR-CD, transforms: [trim]}}
  - {{to: opened_on, from: OPEN-DT, transforms: [date]}}
examples: []
"""
    found = diags(text)
    assert any(f"m.yaml:{line_of(text, 'to: status')}:9: 'opened' is not a value of Account.status" in d
               and "(did you mean open?)" in d for d in found)
    assert any("the mapping has no examples" in d for d in found)


COPYBOOK_RULES = f"""\
name: test.txn
version: 1
source:
  kind: copybook
  contract: {{copybook: {COPYBOOKS / 'TXNHIST.cpy'}, record: TXNHIST-DETAIL}}
target: Transaction
direction: read
fields:
  - {{to: id, from: TXD-TXN-SEQ, transforms: [trim]}}
  - {{to: account_id, from: TXD-ACCT-NO, transforms: [trim]}}
  - {{to: booked_at, from: TXD-POST-DATE, transforms: [{{datetime: {{time_field: TXD-POST-TIME}}}}]}}
  - {{to: value_date, from: TXD-VALUE-DATE, transforms: [date]}}
  - {{to: amount, from: TXD-TXN-AMT, transforms: [{{money: {{currency: TXD-CURR-CODE}}}}]}}
  - to: status
    from: TXD-STATUS
    transforms:
      - code: {{conditions: TXD-STATUS, map: {{TXD-POSTD: posted}}}}
  - {{to: reference, from: $request.TXD-REF}}
examples: []
"""


def test_copybook_types_conditions_and_contexts():
    found = diags(COPYBOOK_RULES)
    assert any(f"m.yaml:{line_of(COPYBOOK_RULES, 'TXD-TXN-SEQ')}:" in d and "transform trim takes str but gets int"
               in d for d in found), found
    assert any("no 88-level condition 'TXD-POSTD'" in d and "did you mean TXD-POSTED?" in d for d in found)
    assert any("names the context record 'request', which source.context does not declare" in d for d in found)


def test_examples_that_fail_point_at_the_example():
    text = BALANCE.replace('as_of: "2026-11-27"', 'as_of: "2026-11-28"')
    [d] = diags(text)
    assert d.startswith(f"m.yaml:{line_of(text, '- name: ok')}:5: example 'ok' failed: read: as_of: "
                        'expected "2026-11-28", got "2026-11-27"')


def test_check_file_and_compile_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BALANCE.replace("transforms: [trim]", "transforms: [trimm]"))
    [d] = check_file(path)
    assert d.file == str(path) and d.hint == "did you mean trim?" and d.line == line_of(path.read_text(), "trimm")
    with pytest.raises(MappingError) as err:
        compile_file(path)
    assert err.value.line == d.line and "did you mean trim?" in str(err.value)
    assert check_file(tmp_path / "missing.yaml")[0].message.startswith("cannot read the mapping file")


def test_positions_survive_for_every_rule():
    spec, problems = parse_spec(BALANCE, "m.yaml")
    assert not problems
    assert [r.pos.line for r in spec.rules] == [line_of(BALANCE, f"to: {n}") for n in
                                                 ("account_id", "ledger", "available", "as_of")]
