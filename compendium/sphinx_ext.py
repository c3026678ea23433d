"""A small Sphinx extension used by the book's ``_config.yml``.

Jupyter Book 1.0.4 with sphinx-thebe 0.3.1 and sphinx-togglebutton emits the inline
configuration scripts of those extensions once per read phase, so a page can carry the same
``const THEBE_JS_URL = ...`` several times and the browser reports a SyntaxError.  This
extension keeps the first copy of each identical script entry on every page.
"""

from __future__ import annotations

from typing import Any


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for script in scripts:
        filename = getattr(script, "filename", str(script)) or ""  # None and "" both mean inline
        attrs = getattr(script, "attributes", {}) or {}
        key = (filename, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key in seen:
            continue
        seen.add(key)
        unique.append(script)
    context["script_files"] = unique


def setup(app) -> dict[str, Any]:
    app.connect("html-page-context", _dedupe_scripts, priority=1)  # emit_firstresult: run before handlers that return a template
    return {"parallel_read_safe": True, "parallel_write_safe": True}
