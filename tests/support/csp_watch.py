"""Record every Content-Security-Policy violation in a Playwright browser context.

A ``securitypolicyviolation`` listener is installed before any page script runs (an init script, which the
page's own CSP does not govern) and hands each violation to Python through an exposed function, so nothing is
lost when a page navigates. Chromium also logs every violation to the console ("… violates the following
Content Security Policy directive …"); those messages are recorded too.
"""
from __future__ import annotations

import json
from typing import Any

LISTENER = """
document.addEventListener('securitypolicyviolation', function (e) {
  window.__gsCspViolation(JSON.stringify({directive: e.violatedDirective, blocked: e.blockedURI,
                                          source: e.sourceFile, line: e.lineNumber, sample: e.sample}));
});
"""


def watch_csp(ctx: Any) -> list[Any]:
    """Start recording ``ctx``'s CSP violations; returns the (growing) list of their descriptions."""
    seen: list[Any] = []
    ctx.expose_function("__gsCspViolation", lambda text: seen.append(json.loads(text)))
    ctx.add_init_script(LISTENER)
    ctx.on("console", lambda m: "Content Security Policy" in m.text and seen.append(m.text))
    return seen
