"""Output encoding for generated HTML, by context: data in inline script, HTML text and attributes, raw-text assets.

Whatever a site record, a loaded layer file or an operator puts into a field must come out of the page as the
same text, and never as markup or code. One function per context, so no caller picks an escape by hand:

* :func:`script_json` — any value placed inside an inline ``<script>``: JSON with ``<``, ``>``, ``&``, U+2028
  and U+2029 written as ``\\u`` escapes, so no field can end the script (``</SCRIPT>``), open an HTML comment
  (``<!--``) or break a JavaScript string literal; ``JSON.parse``/JavaScript read back exactly the original.
* :func:`html_text` — text and attribute values in markup (quotes escaped too).
* :func:`raw_text` — a vendored asset (Leaflet's JS/CSS, ours, never user data) inlined in ``<script>`` or
  ``<style>``: refuses nothing, but breaks any ``</script``, ``</style`` or ``<!--`` in any letter case.
"""
from __future__ import annotations

import html
import json
import re
from typing import Any

_SCRIPT_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
                                 "\u2028": "\\u2028", "\u2029": "\\u2029"})
_RAW_TEXT_END = re.compile(r"<(?=/(?:script|style)|!--)", re.IGNORECASE)


def script_json(value: Any) -> str:
    """``value`` as a JavaScript literal that is safe anywhere inside an inline ``<script>`` element.

    The escaped characters can only occur inside JSON strings, where ``\\u003c`` and ``<`` mean the same.
    (A NaN comes out as JavaScript's ``NaN``, as :func:`json.dumps` writes it.)
    """
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)


def html_text(value: Any) -> str:
    """``value`` as HTML text or a quoted attribute value (``&<>"'`` escaped)."""
    return html.escape(str(value), quote=True)


def raw_text(text: str) -> str:
    """A trusted asset's text made unable to close the ``<script>``/``<style>`` element it is inlined in."""
    return _RAW_TEXT_END.sub("<\\\\", text)
