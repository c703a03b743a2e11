"""The mock mainframe core: one ledger behind three faces (SOAP, SFTP batch, ODBC).

It is the *other side* of every corebridge contract, so it imports nothing from
``adapters``, ``mappings``, ``api`` or ``canonical``: if it reused our code, contract
tests would prove nothing.
"""
