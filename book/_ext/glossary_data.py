"""A Sphinx extension of this book: both glossaries are rendered from one data file, book/glossary.yml.

Each edition's glossary page holds the marker line

    % glossary entries: book/glossary.yml

which is replaced, as the page is read, by a `{glossary}` block with one entry per term in the
edition's language (`glossary_data_language: en` or `zh` in its _config.yml): the English edition
lists the English terms with their Chinese names, the Chinese edition the Chinese terms with their
English names. The chapters of each edition link the terms with `{term}`; tests/test_translation.py
checks that a Chinese chapter links the Chinese term of every entry its English chapter links.

The Chinese edition's search also learns the Chinese terms as words: Sphinx splits Chinese text with
jieba, which would cut 遗忘门 into 遗忘 and 门; given the terms as a user dictionary it keeps them whole,
so a search for 遗忘门 finds the pages that use it.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "glossary.yml"
MARKER = "% glossary entries: book/glossary.yml"


def entries() -> list[dict]:
    import yaml

    data = yaml.safe_load(DATA.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{DATA}: expected a list of entries")
    for entry in data:
        missing = {"en", "zh"} - entry.keys()
        if missing or not ({"see"} <= entry.keys() or {"en_text", "zh_text"} <= entry.keys()):
            raise ValueError(f"{DATA}: entry {entry.get('en', entry)!r} needs en, zh and either see or "
                             f"en_text and zh_text")
    return data


def _indent(text: str) -> str:
    return "\n".join("  " + line if line.strip() else "" for line in text.strip().splitlines())


def render(language: str) -> str:
    """The `{glossary}` block of one edition, in MyST."""
    data = entries()
    by_en = {e["en"]: e for e in data}
    lines = ["```{glossary}"]
    for entry in data:
        if language == "en":
            lines.append(entry["en"])
            if "see" in entry:
                body = f"See {{term}}`{entry['see']}`."
            else:
                names = entry["zh"] + "".join(f", also {a}" for a in entry.get("zh_also", []))
                abbr = f" ({entry['abbr']})" if entry.get("abbr") else ""
                body = f"{names}{abbr}. {entry['en_text']}"
        else:
            lines.append(entry["zh"])
            if "see" in entry:
                body = f"见 {{term}}`{by_en[entry['see']]['zh']}`。"
            else:
                abbr = f"（{entry['abbr']}）" if entry.get("abbr") else ""
                also = ("；又称" + "、".join(entry["zh_also"])) if entry.get("zh_also") else ""
                body = f"*{entry['en']}*{abbr}{also}。{entry['zh_text']}"
        lines.append(_indent(body))
        lines.append("")
    lines[-1] = "```"
    return "\n".join(lines) + "\n"


def _on_source_read(app, docname, source) -> None:
    language = app.config.glossary_data_language
    if language and MARKER in source[0]:
        app.env.note_dependency(str(DATA))  # the page is read again whenever the data file changes
        source[0] = source[0].replace(MARKER, render(language))


def _search_dictionary(app, config) -> None:
    """For the Chinese edition: the glossary's Chinese terms as jieba's user dictionary."""
    if config.glossary_data_language != "zh":
        return
    words = set()
    for entry in entries():
        words.update([entry["zh"], *entry.get("zh_also", [])])
    path = Path(app.doctreedir) / "search_terms_zh.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    # jieba's format: word, frequency, part of speech; a high frequency keeps the word whole.
    path.write_text("".join(f"{w} 100000 n\n" for w in sorted(words) if " " not in w), encoding="utf-8")
    config.html_search_options = {**(config.html_search_options or {}), "dict": str(path)}


def setup(app):
    app.add_config_value("glossary_data_language", "", "env")
    app.connect("source-read", _on_source_read)
    app.connect("config-inited", _search_dictionary)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
