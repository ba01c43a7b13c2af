"""The HTML report renders in headless Chromium and its sample filters work.

Chromium is Debian's package (scripts/setup.sh installs it); Playwright drives it
through ``executable_path`` and never downloads a browser of its own.
"""

import json
import shutil
from pathlib import Path

import pytest
from study_factory import make_study

from selfexplain.reports import write_study_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Flags for a closed network: no background connections, no sandbox (root in CI containers).
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    root = make_study(tmp_path_factory.mktemp("study"), n=30)
    # A quote, markup and a script end tag in an input must stay text.
    run = Path(json.loads((root / "study.json").read_text())["cells"][0]["run_dir"])
    lines = (run / "records.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["input"] = 'say "<b>hi</b>" </script><!-- x'
    lines[0] = json.dumps(first)
    (run / "records.jsonl").write_text("\n".join(lines) + "\n")
    files = write_study_report(root)
    records = [json.loads(l) for c in json.loads((root / "study.json").read_text())["cells"]
               for l in Path(c["run_dir"], "records.jsonl").read_text().splitlines()]
    return files["html"][0], records


@pytest.fixture(scope="module")
def page(report):
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: run scripts/setup.sh (it installs Debian's chromium package)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page()
        errors = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(report[0].as_uri())
        pg.wait_for_selector("#explorer tbody tr")
        yield pg, errors
        browser.close()


def _count(pg):
    return int(pg.inner_text("#count").split()[0])


@pytest.mark.embedded
def test_page_renders_tables_figures_and_samples(report, page):
    pg, errors = page
    assert errors == []
    assert pg.locator("section.table").count() == 8  # the cells table, the reading and the paper's six
    assert pg.locator("img").count() == 3
    assert all(pg.evaluate(f"document.images[{i}].naturalWidth") > 100 for i in range(3))
    _, records = report
    assert _count(pg) == len(records)
    assert pg.locator("#explorer tbody tr").count() == min(500, len(records))
    # User text is shown as text, never parsed as markup.
    assert pg.locator("#explorer b").count() == 0
    pg.select_option("#f-cell", index=1)
    assert pg.get_by_text('say "<b>hi</b>" </script><!-- x').count() >= 1
    pg.select_option("#f-cell", value="")


@pytest.mark.embedded
def test_filters_select_exactly_the_matching_samples(report, page):
    pg, _ = page
    _, records = report
    pg.select_option("#f-style", "redaction")
    assert _count(pg) == sum(r["style"] == "redaction" for r in records)
    assert set(pg.eval_on_selector_all("#explorer tbody tr", "rs => rs.map(r => r.dataset.style)")) == {"redaction"}
    pg.select_option("#f-valid", "valid")
    pg.select_option("#f-faithful", "yes")
    expected = sum(r["style"] == "redaction" and r["valid"] and r["faithful"] for r in records)
    assert _count(pg) == expected
    classes = pg.eval_on_selector_all("#explorer tbody tr", "rs => rs.map(r => r.className)")
    assert len(classes) == expected and all("faithful" in c and "unfaithful" not in c for c in classes)
    pg.select_option("#f-valid", "invalid")
    pg.select_option("#f-faithful", "")
    assert _count(pg) == sum(r["style"] == "redaction" and not r["valid"] for r in records)
