"""Site phone numbers: what couriers dial from a card, so it must be a number, in the formats China uses.

Accepted (checked with Google's libphonenumber through the PyPI ``phonenumbers`` package, default region CN):

* mobiles ``13812345678``, ``138 1234 5678``, ``+86 138 1234 5678``;
* landlines with the area code ``010-6512 3456``, ``(010) 65123456``, ``+86 10 6512 3456``, ``0086 10 …``;
* a Beijing landline without the area code ``6512 3456`` (read as 010);
* national service numbers ``400-810-8888`` and short numbers such as the unions' hotline ``12351``, ``95588``;
* an extension after ``转``, ``ext.``, ``x`` or ``#``: ``010-6512 3456 转 802``;
* several numbers separated by ``/``, ``;``, ``；``, ``、`` or ``,``.

The text is kept as the operator wrote it (trimmed): cards show it, and the dial link keeps only digits and ``+``.
"""
from __future__ import annotations

import re

import phonenumbers
from phonenumbers import shortnumberinfo

MAX_LENGTH = 40
_SEPARATORS = re.compile(r"\s*[/;；、,，]\s*")
_EXTENSION = re.compile(r"\s*(?:转|分机|ext\.?|x|#)\s*(\d{1,6})\s*$", re.IGNORECASE)
_ALLOWED = re.compile(r"^[\d\s+()\-.转分机extEXT#]+$")
DEFAULT_AREA_CODE = "010"  # Beijing


class PhoneInvalid(ValueError):
    """The text is not a phone number in an accepted format; the message says why, for a 422 or a CLI line."""


def _check_one(text: str) -> None:
    body = _EXTENSION.sub("", text)
    ext = _EXTENSION.search(text)
    if not body.strip():
        raise PhoneInvalid(f"{text!r} has no number before the extension")
    try:
        number = phonenumbers.parse(body, "CN")
    except phonenumbers.NumberParseException:
        raise PhoneInvalid(f"{text!r} is not a phone number") from None
    if number.extension:
        raise PhoneInvalid(f"{text!r}: write an extension as 转802 or ext. 802")
    if phonenumbers.is_valid_number(number) or shortnumberinfo.is_valid_short_number(number):
        return
    digits = re.sub(r"\D", "", body)
    if len(digits) in (7, 8) and not body.strip().startswith(("+", "0")):
        local = phonenumbers.parse(DEFAULT_AREA_CODE + digits, "CN")
        if phonenumbers.is_valid_number(local):
            return
    hint = " (an extension goes after 转 or ext.)" if ext is None and len(digits) > 12 else ""
    raise PhoneInvalid(f"{text!r} is not a valid Chinese mobile, landline, service or short number{hint}")


def validate_phone(value: str) -> str:
    """The trimmed phone text, or :class:`PhoneInvalid` saying which part is wrong and why."""
    text = value.strip()
    if len(text) > MAX_LENGTH:
        raise PhoneInvalid(f"at most {MAX_LENGTH} characters")
    parts = [p for p in _SEPARATORS.split(text) if p]
    if not parts:
        raise PhoneInvalid("is empty")
    for part in parts:
        if not _ALLOWED.match(part):
            raise PhoneInvalid(f"{part[:40]!r} may only contain digits, spaces, + - ( ) and an extension (转/ext.)")
        _check_one(part)
    return text
