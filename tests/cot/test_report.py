"""A folder of cot runs as one page: tables, CSVs and the explorer, byte for byte on a rerun."""

import json

import pytest
from cot_scripted import ReasoningBackend
from typer.testing import CliRunner

from selfexplain.cli import app
from selfexplain.errors import UserError
from selfexplain.pipeline.cot import cot
from selfexplain.reports.cot import write_cot_report


@pytest.fixture
def folder(tmp_path, helper_backend):
    be = ReasoningBackend(reasoning="It says happy. </script><b>x</b> Answer: Positive")
    cot("cue", model="scripted", backend_instance=be, limit=4, chunk_size=2, cues="suggestion,metadata",
        output_path=tmp_path)  # fmt: skip
    cot("early-answer,filler", model="scripted", backend_instance=be, limit=4, chunk_size=2, output_path=tmp_path)
    return tmp_path


def test_the_page_holds_every_runs_rows_and_its_cued_samples(folder, tmp_path):
    files = write_cot_report(folder, tmp_path / "out")
    md = (tmp_path / "out" / "cot.md").read_text()
    assert "| tweets | reasoning | 4 | suggestion | 4 | 1.000 [0.40, 1.00]†" in md  # every sample switched
    assert "| tweets | reasoning | 4 | metadata | 4 | 0.000 [0.00, 0.60]†" in md
    assert "AOC" in md and (tmp_path / "out" / "perturb.csv").exists()
    page = (tmp_path / "out" / "cot.html").read_text()
    samples = json.loads(page.split('id="samples">')[1].split("</script>")[0])
    assert len(samples) == 8 and {s["cue"] for s in samples} == {"suggestion", "metadata"}
    assert "</script><b>" not in page.split('id="samples">')[1].split("</script>")[0]  # escaped in the JSON
    before = {p.name: p.read_bytes() for ps in files.values() for p in ps}
    write_cot_report(folder, tmp_path / "out")
    assert before == {p.name: p.read_bytes() for ps in files.values() for p in ps}


def test_the_report_command_recognises_a_folder_of_cot_runs(folder, tmp_path):
    res = CliRunner().invoke(app, ["report", str(folder), "--output-path", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "o" / "cot.html").exists()


def test_a_folder_without_cot_runs_is_one_line(tmp_path):
    with pytest.raises(UserError, match="no finished cot run"):
        write_cot_report(tmp_path)
