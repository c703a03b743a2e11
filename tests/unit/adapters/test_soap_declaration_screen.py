"""``has_declaration``: the DOCTYPE/ENTITY screen in front of lxml, with its quick exit for plain replies."""

from __future__ import annotations

import pytest

from adapters.soap_transport import MARKERS, has_declaration

ENCODINGS = ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "utf-16", "utf-32")
PLAIN = '<?xml version="1.0"?><e:Envelope xmlns:e="urn:x"><e:Body><!-- a comment --><a>1</a></e:Body></e:Envelope>'


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("declaration", ["<!DOCTYPE x>", '<!ENTITY x "y">'])
def test_a_declaration_is_found_in_every_encoding(encoding, declaration):
    body = PLAIN.replace("<e:Envelope", declaration + "<e:Envelope").encode(encoding)
    assert has_declaration(body)
    assert has_declaration(body) == any(marker in body for marker in MARKERS)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_plain_replies_and_comments_are_not_declarations(encoding):
    body = PLAIN.encode(encoding)
    assert not has_declaration(body)
