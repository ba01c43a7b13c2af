"""The documentation: the site builds strictly, the command-line page is current, and the worked examples run."""

import re
import subprocess
import sys

from locations import ROOT

DOCS = ROOT / "docs"


def test_the_site_builds_with_no_broken_link_or_reference(tmp_path):
    res = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
                         cwd=ROOT, capture_output=True, text=True, env={"NO_MKDOCS_2_WARNING": "1",
                                                                         "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stdout + res.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    assert "Measure self-explanation faithfulness" in api  # the reference is generated from the docstrings


def test_the_command_line_page_lists_every_option_of_every_command():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import cli_reference
    finally:
        sys.path.pop(0)
    assert (DOCS / "cli.md").read_text() == cli_reference.reference(), (
        "docs/cli.md is out of date: run .venv/bin/python scripts/cli_reference.py")
    import typer

    from selfexplain.cli import app

    page = (DOCS / "cli.md").read_text()
    for name, cmd in cli_reference._commands(typer.main.get_command(app), "selfexplain"):
        assert f"## `{name}`" in page
        for p in cmd.params:
            if p.param_type_name == "option" and p.name != "help":
                assert all(f"`{o}`" in page for o in p.opts), (name, p.opts)


def test_the_readme_is_a_front_door_that_links_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    pages = re.findall(r"^  - [^:]+: (\S+\.md)$", (ROOT / "mkdocs.yml").read_text(), re.M)
    assert len(pages) >= 12
    for page in pages:
        assert (DOCS / page).is_file(), page
        if page != "index.md":
            assert f"(docs/{page})" in readme, page
    # The pages speak of the project, not of how it was built.
    for page in DOCS.glob("*.md"):
        assert not re.search(r"\bissue\b|\bissue-\d|this session", page.read_text(), re.I), page.name


def _blocks(language: str) -> list[str]:
    text = (DOCS / "extending.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_the_worked_task_and_backend_run_as_written(tmp_path, monkeypatch):
    (yaml_text,), (csv_text,) = _blocks("yaml"), _blocks("csv")
    monkeypatch.chdir(tmp_path)  # the example names its files relative to where it runs
    (tmp_path / "reviews.yaml").write_text(yaml_text)
    (tmp_path / "reviews.csv").write_text(csv_text)
    (code,) = _blocks("python")
    scope: dict = {}
    exec(compile(code, "docs/extending.md", "exec"), scope)
    res = scope["result"]
    records = res.records
    assert len(records) == 4 * 3  # "Does the job" (3 stars) is dropped; two of each label, three styles
    assert {r["gold"] for r in records} == {"Positive", "Negative"}
    assert res.summary.accuracy == 1.0  # both negative reviews hold a rule word ("waste", "Cheap")
    # A negative review's attribution names its rule word, and erasing it flips the rule: valid and faithful.
    negative = [r for r in records if r["prediction"] == "Negative" and r["style"] == "attribution"]
    assert len(negative) == 2 and all(r["valid"] and r["faithful"] for r in negative)
    assert res.run_dir.resolve().parent == tmp_path / "runs"
