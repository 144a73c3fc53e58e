"""CSV cells that a spreadsheet cannot run as formulas, and the exact inverse for ``geoservice load``.

Excel, LibreOffice and Google Sheets evaluate a cell that starts with ``=``, ``+``, ``-`` or ``@`` (and, in some
versions, after a leading tab or carriage return) as a formula: a site name such as
``=HYPERLINK("http://…","点击领取补贴")`` in an export would become a live link or a DDE command on a planner's
machine ("CSV injection", OWASP). The rule, applied to every *text* cell of our CSV exports:

* a cell that starts with ``=``, ``+``, ``-``, ``@``, tab, CR **or an apostrophe** is written with one extra
  leading apostrophe ``'``; every other cell is written as it is;
* ``geoservice load`` removes one leading ``'`` from every text cell of a CSV file.

The apostrophe is in the list so that the rule is a bijection: a value that really starts with ``'`` is written
as ``''…`` and reads back as ``'…``, so export → load gives back exactly the stored text. Spreadsheets show a
leading apostrophe as "this is text" and hide it, so ``'+86 10 6512 3456`` displays as the phone number.
Numeric columns (``lon``/``lat``) are numbers, never text cells, and are never touched (a negative coordinate
stays ``-0.5``). GeoJSON and GeoPackage files carry typed values and are not affected.
"""
from __future__ import annotations

FORMULA_PREFIXES: tuple[str, ...] = ("=", "+", "-", "@", "\t", "\r", "'")
ESCAPE = "'"


def to_csv_cell(text: str) -> str:
    """``text`` as a CSV cell a spreadsheet shows as text: ``'`` prepended when it starts with a prefix."""
    return ESCAPE + text if text.startswith(FORMULA_PREFIXES) else text


def from_csv_cell(cell: str) -> str:
    """The inverse of :func:`to_csv_cell`: one leading ``'`` removed, if there is one."""
    return cell[1:] if cell.startswith(ESCAPE) else cell
