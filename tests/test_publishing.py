"""Publishing: the GitHub Pages workflow builds the book with the README's command and uploads
the folder that command writes; Binder's environment matches the versions pyproject.toml pins."""

from __future__ import annotations

import re
import tomllib

import yaml

from book_build import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _pins() -> dict[str, str]:
    deps = PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]
    return {re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0].lower(): d for d in deps}


def test_pages_workflow_builds_with_make_book_and_uploads_the_built_html():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    assert workflow[True]["push"]["branches"] == ["main"], "the workflow should run on pushes to main"  # `on:` parses as True
    steps = workflow["jobs"]["build"]["steps"]
    assert any(step.get("run") == "make book" for step in steps), "the build job should run `make book`, the README's command"
    python = next(s["with"]["python-version"] for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert python == "3.11", f"the workflow builds with Python {python}; the README promises 3.11"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "_build/html"
    assert "_build/html" in (ROOT / "Makefile").read_text(), "make book no longer says the book lands in _build/html"
    deploy = workflow["jobs"]["deploy"]
    assert deploy["needs"] == "build" and any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"])
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}


def test_binder_environment_pins_what_pyproject_pins_and_installs_lstm_ref():
    lines = [line.strip() for line in (ROOT / ".binder" / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    pins = _pins()
    for line in lines:
        if line.startswith("--"):
            continue
        name = re.split(r"[<>=!~ ]", line, maxsplit=1)[0].lower()
        assert name in pins, f".binder/requirements.txt installs {name}, which pyproject.toml does not list"
        assert line == pins[name], f".binder/requirements.txt has {line!r}; pyproject.toml has {pins[name]!r}"
    assert "torch==2.13.0" in lines
    assert (ROOT / ".binder" / "runtime.txt").read_text().strip() == "python-3.11"
    post_build = ROOT / ".binder" / "postBuild"
    assert post_build.stat().st_mode & 0o111, ".binder/postBuild must be executable"
    assert "pip install --no-deps -e ." in post_build.read_text(), "postBuild should install lstm_ref from the repository"


def test_make_test_keeps_each_xdist_group_on_one_worker(request):
    """`make test` runs with --dist loadgroup, so that the costly module fixtures (the hostile batch,
    the class report, an assignment's generation) are made on one worker, not on both. Without the
    group in the test ids xdist hands the tests out one by one and the suite only gets slower."""
    assert "--dist loadgroup" in (ROOT / "Makefile").read_text()
    if getattr(request.config.option, "loadgroup", False):  # a worker of a `--dist loadgroup` run (xdist sets it)
        grouped = [item for item in request.session.items if item.get_closest_marker("xdist_group")]
        lost = [item.nodeid for item in grouped if "@" not in item.nodeid]
        assert not lost, (f"--dist loadgroup ignored the xdist_group mark of {len(lost)} tests, e.g. {lost[0]}: "
                          "this pytest and pytest-xdist do not work together (pytest-dev/pytest-xdist#1386)")
