"""A Sphinx extension of this book: on every page, a link to the same page in the other edition.

The English edition is built from the repository root (its pages are `book/NN_slug`) into
`_build/html/`, the Chinese one from `book/zh/` (pages `NN_slug`) into `_build/html/zh/`. Each
edition's _config.yml describes the other:

    edition_switch:
      this_prefix: "book/"      # what this edition's page names start with
      other_prefix: ""          # ... and the other edition's
      other_root: "zh/"         # the other edition's site, relative to this edition's site root
      label: "中文"             # the link's text, in the other language
      title: "本页的中文版"      # its tooltip and accessible name
      lang: "zh-CN"             # the other edition's language

The link goes at the top of the page body and into the head as `<link rel="alternate" hreflang>`,
so readers and search engines find the translation of exactly this page.
"""

from __future__ import annotations

from html import escape


def other_page(pagename: str, options: dict) -> str | None:
    """The other edition's page name for this page, or None for pages outside the book (search, genindex)."""
    prefix = options.get("this_prefix", "")
    if not pagename.startswith(prefix):
        return None
    return options.get("other_prefix", "") + pagename[len(prefix):]


def link(pagename: str, options: dict) -> str | None:
    """The relative URL of the same page in the other edition."""
    other = other_page(pagename, options)
    if other is None:
        return None
    up = "../" * pagename.count("/")
    return f"{up}{options['other_root']}{other}.html"


def _on_html_page_context(app, pagename, templatename, context, doctree) -> None:
    options = app.config.edition_switch
    if not options or doctree is None:
        return
    href = link(pagename, options)
    if href is None:
        return
    lang = escape(options["lang"])
    anchor = (f'<a class="edition-switch" href="{escape(href)}" hreflang="{lang}" lang="{lang}" '
              f'title="{escape(options["title"])}">{escape(options["label"])}</a>')
    context["body"] = f'<p class="edition-switch">{anchor}</p>\n' + context.get("body", "")
    context["metatags"] = context.get("metatags", "") + (
        f'\n<link rel="alternate" hreflang="{lang}" href="{escape(href)}" />')


def setup(app):
    app.add_config_value("edition_switch", {}, "html")
    app.connect("html-page-context", _on_html_page_context)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
