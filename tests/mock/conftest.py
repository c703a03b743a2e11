"""The mock mainframe's own tests use the shared fixtures of tests/fixtures_mock.py
(``seeded_template``, ``ledger``, ``engine``, ``faults``), registered in tests/conftest.py."""
