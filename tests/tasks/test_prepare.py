"""Offline data preparation: the BIG-bench extractions (VitaminC, a multiple-choice task), against a package index
served on loopback."""

import hashlib
import http.server
import io
import json
import tarfile
import threading
from functools import partial

import pytest

from locations import FIXTURES
from selfexplain.errors import UserError
from selfexplain.tasks import get_task
from selfexplain.tasks.data import load_examples
from selfexplain.tasks.prepare import prepare

FIX = FIXTURES / "vitaminc_task.json"
# BIG-bench Hard's kind of task.json (multiple choice through target_scores), shaped like sports_understanding's.
BBH = FIXTURES / "bbh_sports_task.json"


@pytest.fixture
def index(tmp_path, monkeypatch):
    root = tmp_path / "www"
    (root / "simple" / "bigbench").mkdir(parents=True)
    (root / "files").mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(FIX, arcname="bigbench-1.0.0/bigbench/benchmark_tasks/vitaminc_fact_verification/task.json")
        tar.add(BBH, arcname="bigbench-1.0.0/bigbench/benchmark_tasks/sports_understanding/task.json")
    (root / "files" / "bigbench-1.0.0.tar.gz").write_bytes(buf.getvalue())
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler, directory=str(root)))
    base = f"http://127.0.0.1:{server.server_address[1]}"
    sha = hashlib.sha256(buf.getvalue()).hexdigest()
    listing = {"files": [{"filename": "bigbench-1.0.0.tar.gz", "url": f"{base}/files/bigbench-1.0.0.tar.gz",
                          "hashes": {"sha256": sha}}]}
    (root / "simple" / "bigbench" / "index.html").write_text(json.dumps(listing))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SELFEXPLAIN_PYPI_SIMPLE", f"{base}/simple")
    monkeypatch.setenv("SELFEXPLAIN_CACHE", str(tmp_path / "cache"))
    yield root, listing
    server.shutdown()


def test_prepare_vitaminc_then_load(index):
    path = prepare("vitaminc")
    assert path.read_bytes() == FIX.read_bytes()
    assert len(load_examples(get_task("vitaminc"))) == 3
    assert prepare("vitaminc") == path  # cached


def test_a_multiple_choice_task_lists_its_options_and_labels_by_letter(index):
    prepare("sports_understanding")
    examples = load_examples(get_task("sports_understanding"))
    assert [e.label for e in examples] == ["B", "A", "B", "A"]
    assert examples[0].text.endswith("Statement: Joao Moutinho caught the screen pass in the NFC championship "
                                     "Plausible/implausible? Options: (A) plausible (B) implausible")


def test_a_multiple_choice_example_with_another_count_of_options_is_one_line(tmp_path):
    data = json.loads(BBH.read_text())
    data["examples"][2]["target_scores"]["maybe"] = 0
    (tmp_path / "task.json").write_text(json.dumps(data))
    with pytest.raises(UserError, match=r"example 2: field 'target_scores' has 3 options; task sports_understanding "
                                        r"has 2 \(A, B\)"):
        load_examples(get_task("sports_understanding"), str(tmp_path / "task.json"))


def test_prepare_rejects_a_corrupted_download(index):
    root, listing = index
    listing["files"][0]["hashes"]["sha256"] = "0" * 64
    (root / "simple" / "bigbench" / "index.html").write_text(json.dumps(listing))
    with pytest.raises(UserError, match="sha256 mismatch"):
        prepare("vitaminc")


def test_unprepared_task_says_how(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFEXPLAIN_CACHE", str(tmp_path))
    with pytest.raises(UserError, match="selfexplain data prepare vitaminc"):
        load_examples(get_task("vitaminc"))
    with pytest.raises(UserError, match="nothing to prepare"):
        prepare("snli")
