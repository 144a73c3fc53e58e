"""Reading a response's headers cheaply: the after-request hooks run on every answer."""
from __future__ import annotations

from werkzeug.wrappers import Response


def header_names(resp: Response) -> set[str]:
    """The lower-cased names of ``resp``'s headers, in one pass: werkzeug's ``name in headers`` raises and catches
    an HTTP exception for each absent name."""
    return {name.lower() for name, _ in resp.headers}
