"""Many models, one table: hand-made runs with known answers (pairing, refusals, Holm, identity labels)."""

import csv
import io
import json
from dataclasses import asdict
from pathlib import Path

import pytest

from locations import FIXTURES
from selfexplain.errors import UserError
from selfexplain.evaluation import SampleRecord
from selfexplain.reports.leaderboard import build, load_runs, model_label, write
from selfexplain.stats import holm

STYLES = ["attribution", "redaction"]
BASE = {"kind": "embedded", "name": "qwen2.5-coder-0.5b", "dtype": "float32", "gguf_sha256": "1d9614638d18" + "0" * 52}


def make_run(path: Path, model: dict, faithful: dict[str, list[bool | None]], task: str = "tweets",
             width: str = "one", ids: list[str] | None = None, correct: int | None = None, finished: bool = True) -> Path:
    """An evaluate run folder whose outcomes are given: per style, per sample, True/False (valid) or None (invalid)."""
    n = len(next(iter(faithful.values())))
    ids = ids or [f"s{i}" for i in range(n)]
    path.mkdir(parents=True)
    lines = []
    for style, outcomes in faithful.items():
        for i, (sid, f) in enumerate(zip(ids, outcomes)):
            pred = "Positive" if correct is None or i < correct else "Negative"
            r = SampleRecord(chunk=i // 4, sample_id=sid, task=task, style=style, width=width, input="a b c",
                             context=None, gold="Positive", prediction=pred, label_probs={"Positive": 0.8, "Negative": 0.2},
                             label_logprobs={"Positive": -0.2, "Negative": -1.6}, raw_explanation="Answer: b",
                             explanation_truncated=False, parsed="b", valid=f is not None, reason=None if f is not None
                             else "wrong_word_count", n=1 if f is not None else None,
                             edited_input="a [REDACTED] c" if f is not None else None,
                             new_prediction=("Negative" if f else "Positive") if f is not None else None,
                             new_label_probs={"Positive": 0.3 if f else 0.7, "Negative": 0.7 if f else 0.3}
                             if f is not None else None, faithful=f,
                             random_input="[REDACTED] b c" if f is not None else None,
                             random_prediction="Positive" if f is not None else None,
                             random_faithful=False if f is not None else None,
                             random_label_probs={"Positive": 0.8, "Negative": 0.2} if f is not None else None)
            lines.append(json.dumps(asdict(r)))
    (path / "records.jsonl").write_text("".join(x + "\n" for x in lines))
    (path / "config.json").write_text(json.dumps({
        "command": "evaluate", "backend": "hf", "model": model, "task": {"name": task, "fingerprint": "f"},
        "width": width, "styles": list(faithful), "data": {"limit": n, "seed": 0, "split": "test"}}))
    if finished:
        (path / "summary.json").write_text(json.dumps({"n_samples": n}))
    return path


def test_holm_adjusts_step_down():
    assert holm([0.01, 0.04, None, 0.03, 0.005]) == [0.03, 0.06, None, 0.06, 0.02]
    assert holm([0.5]) == [0.5] and holm([]) == []


def test_identity_labels_tell_two_adapters_of_one_base_apart():
    a = model_label({"model": {**BASE, "adapter": "aa11" * 16}, "backend": "hf"})
    b = model_label({"model": {**BASE, "adapter": "bb22" * 16}, "backend": "hf"})
    assert a != b and "adapter aa11aa11" in a and "adapter bb22bb22" in b
    assert model_label({"model": BASE, "backend": "vllm"}) == "qwen2.5-coder-0.5b #1d961463 (float32, vllm)"
    assert model_label({"model": {"kind": "hub", "name": "allenai/tulu-2-7b", "revision": "a1b2c3d4e5f6a7",
                                  "dtype": "bfloat16"}, "backend": "hf"}) == \
        "allenai/tulu-2-7b @a1b2c3d4e5 (bfloat16, hf)"


@pytest.fixture
def three(tmp_path):
    """Three models on the same 40 samples: a (10/40 faithful), b (30/40), c (= a's outcomes exactly)."""
    low = [i < 10 for i in range(40)]
    high = [i < 30 for i in range(40)]
    runs = [make_run(tmp_path / "a", {**BASE, "adapter": "aa11" * 16}, {s: low for s in STYLES}, correct=36),
            make_run(tmp_path / "b", {**BASE, "adapter": "bb22" * 16}, {s: high for s in STYLES}, correct=36),
            make_run(tmp_path / "c", {**BASE, "name": "smollm2-135m"}, {s: low for s in STYLES}, correct=20)]
    return runs


def test_rows_columns_and_pairs_with_known_answers(three, tmp_path):
    board = build(load_runs(three))
    rows = {r["model"]: r for r in board.table.rows}
    assert len(rows) == 3  # two adapters of one base are two rows
    a = next(r for k, r in rows.items() if "aa11" in k)
    assert a["attribution_one_faithfulness"] == 0.25 and a["attribution_one_n_valid"] == 40
    assert a["accuracy"] == 0.9 and a["attribution, one-word"].startswith("0.250 [")
    assert "random 0.000" in a["attribution, one-word"] and "shift +" in a["attribution, one-word"]
    pairs = board.pairs.rows
    assert len(pairs) == 3 * 2  # three pairs of models x two styles
    ab = next(p for p in pairs if "aa11" in p["A"] and "bb22" in p["B"] and p["style"].startswith("attribution"))
    assert ab["diff"] == pytest.approx(0.5) and ab["diff_low"] > 0 and ab["p_value"] < 0.001
    ac = next(p for p in pairs if "aa11" in p["A"] and "smollm2" in p["B"] and p["style"].startswith("attribution"))
    assert ac["diff"] == 0 and ac["p_value"] == 1.0  # identical outcomes
    assert [p["holm_p"] for p in pairs] == holm([p["p_value"] for p in pairs])
    assert all(p["holm_p"] >= p["p_value"] for p in pairs)
    assert "Holm p corrects for all 6 comparisons" in board.pairs.note
    files = write(board, tmp_path / "out")
    assert {p.name for p in files.values()} == {"leaderboard.png", "leaderboard.md", "leaderboard.csv",
                                                 "leaderboard_pairs.csv", "leaderboard.html"}
    table = list(csv.DictReader(io.StringIO(files["csv"].read_text())))
    assert sorted(float(r["attribution_one_faithfulness"]) for r in table) == [0.25, 0.25, 0.75]
    assert "Paired comparisons" in files["html"].read_text()


def test_runs_over_different_samples_are_listed_not_paired(tmp_path):
    a = make_run(tmp_path / "a", BASE, {"attribution": [True, False] * 10})
    b = make_run(tmp_path / "b", {**BASE, "name": "other"}, {"attribution": [True, False] * 10},
                 ids=[f"t{i}" for i in range(20)])
    board = build(load_runs([a, b]))
    assert len(board.table.rows) == 2 and board.pairs.rows == []
    assert "Not paired (different samples)" in board.pairs.note and "0 in common" in board.pairs.note


def test_nested_samples_pair_on_the_smaller_run(tmp_path):
    """A model evaluated on the first 20 of another's 40 samples (the same seed's draw at --limit 20) is
    paired with it on those 20; the second half of the larger run, where the two would differ, is left out."""
    a = make_run(tmp_path / "a", BASE, {"attribution": [True] * 20 + [False] * 20})
    b = make_run(tmp_path / "b", {**BASE, "name": "other"}, {"attribution": [False] * 20})
    board = build(load_runs([a, b]))
    (pair,) = board.pairs.rows
    assert pair["n_pairs"] == 20 and pair["diff"] == pytest.approx(-1.0 if "qwen" in pair["A"] else 1.0)
    assert "on the 20 samples of the smaller run" in board.pairs.note
    assert pair["change B − A [95% CI] p"].endswith("†")  # 20 valid a side: fewer than 50
    assert "Not paired" not in board.pairs.note


def test_refusals_are_one_line(tmp_path):
    a = make_run(tmp_path / "a", BASE, {"attribution": [True] * 4})
    b = make_run(tmp_path / "b", {**BASE, "name": "other"}, {"attribution": [True] * 4}, task="sentiment140")
    with pytest.raises(UserError, match="runs of different tasks: .* holds tweets, .* holds sentiment140"):
        load_runs([a, b])
    c = make_run(tmp_path / "c", BASE, {"attribution": [True] * 4}, finished=False)
    with pytest.raises(UserError, match="--allow-incomplete"):
        load_runs([a, c])
    d = make_run(tmp_path / "d", BASE, {"attribution": [False] * 4})
    with pytest.raises(UserError, match="two one-word runs of one model"):
        build(load_runs([a, d]))
    with pytest.raises(UserError, match="neither an evaluate run folder"):
        load_runs([tmp_path])
    # An incomplete run, allowed: its row is marked.
    board = build(load_runs([c], allow_incomplete=True))
    assert board.table.rows[0]["model"].endswith("‡§")  # and it answers one label to all of its four samples


def test_a_study_of_two_tasks_is_refused_and_its_cells_of_one_task_rank(tmp_path):
    from study_factory import make_study

    from selfexplain.layout import read_study

    root = make_study(tmp_path / "s", n=12)
    with pytest.raises(UserError, match="runs of different tasks"):  # its tweets and vitaminc cells
        load_runs([root])
    tweets = [c["run_dir"] for c in read_study(root)["cells"] if c["eval_task"] == "tweets"]
    board = build(load_runs(tweets))
    assert len(board.table.rows) == 5 and board.groups[0] == ("attribution", "one")  # five models, both widths
    assert len(board.pairs.rows) == 10 * 3 * 2  # every pair of models, per style and width


@pytest.mark.slow
def test_evaluate_several_models_on_the_same_samples_then_the_leaderboard(tmp_path):
    """`evaluate --model A --model B`: one run folder per model, identical samples, a leaderboard of both."""
    from llama_standin import make_tiny_llama
    from typer.testing import CliRunner

    from selfexplain.cli import app

    folder = make_tiny_llama(tmp_path / "tiny-copy")
    res = CliRunner().invoke(app, ["evaluate", "--model", "standin:tulu-tiny", "--model", str(folder), "--task",
                                   "sentiment140", "--data", str(FIXTURES / "sentiment140.csv"),
                                   "--split", "all", "--limit", "4", "--style", "attribution",
                                   "--output-path", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    runs = sorted((tmp_path / "runs").glob("evaluate-*"))
    assert len(runs) == 2
    ids = [{json.loads(x)["sample_id"] for x in (r / "records.jsonl").read_text().splitlines()} for r in runs]
    assert ids[0] == ids[1] and len(ids[0]) == 4
    board = (tmp_path / "runs" / "leaderboard-sentiment140" / "leaderboard.csv").read_text().splitlines()
    assert len(board) == 1 + 2 and "Leaderboard: sentiment140" in res.output


def test_the_figure_names_every_style_plotted_even_when_the_first_model_has_none(tmp_path, monkeypatch):
    """The first row without a valid redaction: the legend still names redaction (a bug of the first
    committed comparison, SmolLM2 first: the label went with the first model's point only)."""
    from matplotlib import pyplot as plt

    from selfexplain.reports import figures
    from selfexplain.reports import leaderboard as lb

    a = make_run(tmp_path / "a", BASE, {"attribution": [True, False] * 5, "redaction": [None] * 10})
    b = make_run(tmp_path / "b", {**BASE, "name": "other"}, {"attribution": [True] * 10, "redaction": [False] * 10})
    board = build(load_runs([a, b]))
    assert board.table.rows[0]["redaction_one_faithfulness"] is None
    shown: list[str] = []

    def keep(fig, path):
        shown.extend(t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts())
        plt.close(fig)
        return path

    monkeypatch.setattr(figures, "_save", keep)
    lb.figure(board, tmp_path / "f.png")
    assert sorted(shown) == ["attribution", "redaction"]


def test_a_model_that_gives_one_label_is_marked(tmp_path):
    """A model answering 'Positive' to all 40 samples cannot be flipped by any edit: its row says so (§), beside
    one answering it to 36 of 40."""
    outcomes = {s: [i < 5 for i in range(40)] for s in STYLES}
    board = build(load_runs([make_run(tmp_path / "a", {**BASE, "adapter": "aa11" * 16}, outcomes),
                             make_run(tmp_path / "b", {**BASE, "adapter": "bb22" * 16}, outcomes, correct=36)]))
    rows = {("aa11" if "aa11" in r["model"] else "bb22"): r for r in board.table.rows}
    assert rows["aa11"]["model"].endswith("§") and rows["aa11"]["most frequent answer"] == "Positive 40 of 40"
    assert not rows["bb22"]["model"].endswith("§") and rows["bb22"]["most frequent answer"] == "Positive 36 of 40"
    assert rows["aa11"]["top_label_share"] == 1.0 and rows["bb22"]["top_label_share"] == 0.9
    assert "§ a model that gives one label to 95% of them or more" in board.table.note
