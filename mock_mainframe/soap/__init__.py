"""The mock mainframe's SOAP face: CoreBanking.wsdl served by a hand-written aiohttp endpoint.

``SoapFace(config, ledger, engine, faults).start()`` listens at ``http://HOST:PORT/corebank/v1``
(WSDL at ``?wsdl``). The contract files live in ``mock_mainframe/wsdl/``.
"""

from .contract import BINDING_QNAME, SERVICE_QNAME, WSDL_PATH, XSD_PATH
from .server import DEFAULT_PATH, SoapFace

__all__ = ["BINDING_QNAME", "DEFAULT_PATH", "SERVICE_QNAME", "SoapFace", "WSDL_PATH", "XSD_PATH"]
