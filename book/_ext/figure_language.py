"""The words in the figures of the Chinese edition: the same code draws them, in Chinese.

Both editions run the same code cells. In the Chinese build, the kernels start with this module
installed (its Sphinx extension, below, arranges that through IPython's startup folder): every
matplotlib text whose whole string is a key of book/zh/figure_text/*.yml (titles, axis labels,
legend entries, annotations, the words of the cell diagrams) is drawn with the Chinese value instead,
and the fonts fall back to Noto Sans CJK SC (Debian's fonts-noto-cjk) for the Chinese characters. A
key may hold `{}` for a part that varies (`"lag {}"` matches "lag 30"); the value repeats it.

Maintainers check that a page's figures have all their words:

    .venv/bin/python book/_ext/figure_language.py --check book/04_lstm_forward.md

runs the English page's code with every figure text recorded and lists those with no Chinese yet.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

BOOK = Path(__file__).resolve().parent.parent
TABLES = {"zh": BOOK / "zh" / "figure_text"}
CJK_FONT = "Noto Sans CJK SC"
ENVIRONMENT = "LONG_MEMORY_FIGURE_LANGUAGE"  # the language the kernel draws its figures in


def load(language: str) -> dict[str, str]:
    """English string -> translation, from every table of the language; conflicting entries are an error."""
    import yaml

    table: dict[str, str] = {}
    source: dict[str, Path] = {}
    for path in sorted(TABLES[language].glob("*.yml")):
        entries = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(entries, dict):
            raise ValueError(f"{path}: expected a mapping of English strings to translations")
        for english, translated in entries.items():
            if not isinstance(english, str) or not isinstance(translated, str):
                raise ValueError(f"{path}: {english!r}: expected a string mapped to a string, got {translated!r}")
            if english.count("{}") != translated.count("{}"):
                raise ValueError(f"{path}: {english!r} and {translated!r} have different numbers of {{}} parts")
            if english in table and table[english] != translated:
                raise ValueError(f"{english!r} is {table[english]!r} in {source[english].name} "
                                 f"and {translated!r} in {path.name}")
            table[english], source[english] = translated, path
    return table


class Translator:
    """Looks a drawn string up: exact keys first, then the keys with `{}` parts, longest first."""

    def __init__(self, table: dict[str, str]):
        self.exact = {k: v for k, v in table.items() if "{}" not in k}
        self.patterns = []
        for key in sorted((k for k in table if "{}" in k), key=len, reverse=True):
            regex = "^" + "(.+?)".join(re.escape(part) for part in key.split("{}")) + "$"
            self.patterns.append((re.compile(regex, re.S), table[key]))

    def __call__(self, text: str) -> str | None:
        if text in self.exact:
            return self.exact[text]
        for regex, translated in self.patterns:
            match = regex.match(text)
            if match:
                parts = iter(match.groups())
                return re.sub(r"\{\}", lambda _: next(parts), translated)
        return None


def has_words(text: str) -> bool:
    """Whether a drawn string holds words, not only math ($...$), numbers and punctuation."""
    outside_math = re.sub(r"\$[^$]*\$", "", text)
    return re.search(r"[A-Za-z]{2,}", outside_math) is not None


def install(language: str) -> None:
    """Draw every known string in `language` and fall back to the CJK font for its characters."""
    import matplotlib
    from matplotlib import text as mtext

    translate = Translator(load(language))
    original = mtext.Text.set_text

    def set_text(self, s):
        if isinstance(s, str):
            translated = translate(s)
            if translated is not None:
                s = translated
        return original(self, s)

    mtext.Text.set_text = set_text
    # The CJK font first: a string that mixes words and math ("前向：$h_t$") is laid out by mathtext,
    # which draws the words in the first font of the family alone, with no fallback. Noto Sans CJK
    # has Latin letters and digits too; a glyph it lacks falls back to DejaVu Sans.
    matplotlib.rcParams["font.family"] = [CJK_FONT, "DejaVu Sans"]


def install_from_environment() -> None:
    language = os.environ.get(ENVIRONMENT)
    if language:
        install(language)


def startup_script(ext_folder: Path) -> str:
    """The IPython startup file that installs the translation in every kernel of a build."""
    return (
        "def _long_memory_figure_language():\n"
        "    import sys\n"
        f"    sys.path.insert(0, {str(ext_folder)!r})\n"
        "    try:\n"
        "        import figure_language\n"
        "        figure_language.install_from_environment()\n"
        "    finally:\n"
        "        sys.path.pop(0)\n"
        "_long_memory_figure_language()\n"
        "del _long_memory_figure_language\n"
    )


def record(page: Path) -> list[str]:
    """Every string with words that the page's code cells draw, in the order drawn."""
    sys.path.insert(0, str(BOOK.parent / "tests"))
    import translation  # tests/translation.py: reads the code cells of a page

    page = page.resolve()
    os.environ["MPLBACKEND"] = "Agg"
    import matplotlib.pyplot as plt
    from matplotlib import text as mtext

    drawn: list[str] = []
    original = mtext.Text.set_text

    def set_text(self, s):
        if isinstance(s, str) and has_words(s) and s not in drawn:
            drawn.append(s)
        return original(self, s)

    mtext.Text.set_text = set_text
    plt.show = lambda *a, **k: plt.close("all")
    os.chdir(page.resolve().parent)
    sys.path.insert(0, str(page.resolve().parent))
    namespace: dict = {"__name__": "__main__"}
    for options, code in translation.parse(page).cells:
        exec(compile(code, f"{page.name} cell", "exec"), namespace)
        plt.close("all")
    return drawn


# --- the Sphinx extension -------------------------------------------------------------------------
# _config.yml of the Chinese edition sets `figure_language: zh`. Its kernels then start with the
# startup file above (a private IPYTHONDIR), and the jupyter cache of the build is emptied whenever
# the tables change, since the cache knows only the code. Both editions fail the build when an
# executed cell reports a glyph missing from the fonts (a figure would show boxes).

def _configure(app, config) -> None:
    import hashlib
    import shutil
    import tempfile

    language = config.figure_language
    if not language:
        return
    table = load(language)  # a broken table stops the build here, before any kernel runs
    digest = hashlib.sha256(repr(sorted(table.items())).encode()).hexdigest()
    cache = Path(getattr(config, "nb_execution_cache_path", "") or Path(app.outdir).parent / ".jupyter_cache")
    stamp = cache.parent / f".figure_text_{language}.sha256"
    if cache.is_dir() and (not stamp.is_file() or stamp.read_text() != digest):
        shutil.rmtree(cache)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)
    folder = Path(tempfile.mkdtemp(prefix="long-memory-ipython-"))
    startup = folder / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-figure-language.py").write_text(startup_script(Path(__file__).resolve().parent))
    import kernel_environment  # the book's extension that owns the kernels' environment

    kernel_environment.set_for_build({"IPYTHONDIR": str(folder), ENVIRONMENT: language})
    app.connect("build-finished", lambda app, exception: shutil.rmtree(folder, ignore_errors=True))


def _missing_glyphs(app, doctree) -> None:
    from docutils import nodes
    from sphinx.util import logging

    for node in doctree.findall(nodes.literal_block):
        text = node.astext()
        if "missing from font" in text:
            line = next(l for l in text.splitlines() if "missing from font" in l)
            logging.getLogger(__name__).warning(
                f"a figure lacks a glyph in its fonts (install fonts-noto-cjk): {line.strip()}",
                location=node)


def setup(app):
    app.setup_extension("kernel_environment")  # restores the caller's environment after the build
    app.add_config_value("figure_language", "", "env")
    app.connect("config-inited", _configure)
    app.connect("doctree-read", _missing_glyphs)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "--check":
        print("usage: figure_language.py --check book/NN_slug.md", file=sys.stderr)
        return 2
    translate = Translator(load("zh"))
    missing = [s for s in record(Path(argv[1])) if translate(s) is None]
    for s in missing:
        print(f"no Chinese for: {s!r}")
    print(f"{argv[1]}: {'every figure string has its Chinese' if not missing else f'{len(missing)} string(s) missing'}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
