"""The published SOAP contract files (WSDL + XSD) and the copies the running face serves.

The files under ``mock_mainframe/wsdl/`` are the contract; the face serves them unchanged except
for ``soap:address``, which is rewritten to the endpoint's real URL. The WSDL imports the XSD by
the relative ``schemaLocation="CoreBanking.xsd"``, so a client that loads either the file or the
served URL finds the schema next to it.
"""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

WSDL_DIR = Path(__file__).resolve().parent.parent / "wsdl"
WSDL_NAME = "CoreBanking.wsdl"
XSD_NAME = "CoreBanking.xsd"
WSDL_PATH = WSDL_DIR / WSDL_NAME
XSD_PATH = WSDL_DIR / XSD_NAME

SERVICE_QNAME = "{urn:corebank:mainframe:v1:wsdl}CoreBankingService"
BINDING_QNAME = "{urn:corebank:mainframe:v1:wsdl}CoreBankingSoapBinding"

_ADDRESS = re.compile(rb'(<soap:address\s+location=")[^"]*(")')


def wsdl_bytes() -> bytes:
    return WSDL_PATH.read_bytes()


def xsd_bytes() -> bytes:
    return XSD_PATH.read_bytes()


def served_wsdl(template: bytes, endpoint_url: str) -> bytes:
    """The WSDL file with its one ``soap:address`` pointing at ``endpoint_url``."""
    location = endpoint_url.replace("&", "&amp;").replace('"', "&quot;").encode()
    served, count = _ADDRESS.subn(lambda m: m.group(1) + location + m.group(2), template)
    if count != 1:
        raise ValueError(f"{WSDL_NAME} must hold exactly one soap:address, found {count}")
    return served


def load_schema() -> etree.XMLSchema:
    """The message schema, compiled with a parser that reads nothing but the local file.

    Build one per face and reuse it: compiling costs milliseconds, validating microseconds.
    """
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.XMLSchema(etree.parse(str(XSD_PATH), parser))
