"""A Sphinx extension of this book: repairs of the HTML that docutils writes for every page, so the
site passes the WCAG 2.1 A and AA checks of axe-core (tests/test_browser.py).

- The bibliography. docutils 0.21 writes the list of references as
  ``<div role="list">`` holding one ``<div role="doc-biblioentry">`` per work. DPUB-ARIA 1.1
  deprecated the role ``doc-biblioentry`` (screen readers no longer announce it), and a ``list``
  may hold only ``listitem`` children, so axe-core reports both ``aria-deprecated-role`` and
  ``aria-required-children`` (critical) on the references page. Each entry becomes a
  ``role="listitem"``: a screen reader then announces "list, 7 items" and reads the works one by
  one, which is what the deprecated role meant to say.

The repair is made to each page's body just before the theme's template renders it
(``html-page-context``), so nothing else in the page changes.
"""

from __future__ import annotations

REPLACEMENTS = (
    (' role="doc-biblioentry"', ' role="listitem"'),
)


def repair(body: str) -> str:
    """The page's body HTML with every replacement made."""
    for old, new in REPLACEMENTS:
        body = body.replace(old, new)
    return body


def _on_html_page_context(app, pagename, templatename, context, doctree) -> None:
    if isinstance(context.get("body"), str):
        context["body"] = repair(context["body"])


def setup(app):
    app.connect("html-page-context", _on_html_page_context)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
