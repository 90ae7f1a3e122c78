"""XMP packets for tests: ``packet`` wraps description attributes and body in the RDF
envelope (IPTC extension and xmp namespaces); ``source_type`` claims an IPTC digital source
type."""

from __future__ import annotations

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def packet(description_attrs: str = "", body: str = "") -> str:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">\n'
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
        '  <rdf:Description rdf:about=""\n'
        '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"\n'
        '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"\n'
        f"    {description_attrs}>{body}</rdf:Description>\n"
        " </rdf:RDF>\n"
        "</x:xmpmeta>\n"
        '<?xpacket end="w"?>'
    )


def source_type(term: str) -> str:
    return packet(f'Iptc4xmpExt:DigitalSourceType="{IPTC}{term}"')
