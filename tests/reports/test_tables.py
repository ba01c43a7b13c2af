"""Every table's numbers, recomputed here directly from the per-sample records of a synthetic study."""

import csv
import io
import json
from pathlib import Path

import pytest
from study_factory import CONDITIONS, STYLES, make_study

from selfexplain import words as W
from selfexplain.reports import all_tables, write_study_report
from selfexplain.reports.lexicon import DELETION, explanation_words, lemma
from selfexplain.reports.study import load_study


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return load_study(make_study(tmp_path_factory.mktemp("study")))


def _records(study, cond, task, width, style=None):
    train = None if cond == "none" else "tweets"
    cell = next(c for c in study.cells if (c.condition, c.train_task, c.eval_task, c.width) == (cond, train, task, width))
    recs = [json.loads(l) for l in Path(cell.run_dir, "records.jsonl").read_text().splitlines()]
    return [r for r in recs if style is None or r["style"] == style]


def _faith(recs):
    valid = [r for r in recs if r["valid"]]
    return sum(r["faithful"] for r in valid) / len(valid), len(valid)


def _by_name(study):
    return {t.name: t for t in all_tables(study)}


NAMES = {"no training": "none", "w/ predictions": "predictions", "w/ attribution": "attribution",
         "w/ redaction": "redaction", "w/ counterfactual": "counterfactual"}


@pytest.mark.parametrize("name,width", [("table4_faithfulness", "one"), ("table5_multiword", "multi")])
def test_faithfulness_tables_match_records(study, name, width):
    t = _by_name(study)[name]
    assert len(t.rows) == 3 * 3  # per style: none, w/ predictions, w/ the style itself
    for row in t.rows:
        cond = NAMES[row["condition"]]
        recs = _records(study, cond, row["task"], width, row["style"])
        value, n_valid = _faith(recs)
        assert row["faithfulness"] == pytest.approx(value) and row["n_valid"] == n_valid
        assert row["ci_low"] <= value <= row["ci_high"]
        with_random = [r for r in recs if r["valid"]]
        assert row["random"] == pytest.approx(sum(r["random_faithful"] for r in with_random) / len(with_random))
        if cond == "none":
            assert row.get("diff") is None
        else:
            assert cond in ("predictions", row["style"])
            base, _ = _faith(_records(study, "none", row["task"], width, row["style"]))
            assert row["diff"] == pytest.approx(value - base)
            assert row["diff_low"] <= row["diff"] <= row["diff_high"] and 0 <= row["p_value"] <= 1


def test_accuracy_table_matches_records(study):
    t = _by_name(study)["table7_accuracy"]
    assert len(t.rows) == 2 * len(CONDITIONS)
    for row in t.rows:
        cond = NAMES[row["condition"].split(" (")[0]]
        samples = {r["sample_id"]: r for r in _records(study, cond, row["task"], "one")}
        acc = sum(r["prediction"] == r["gold"] for r in samples.values()) / len(samples)
        assert row["accuracy"] == pytest.approx(acc) and row["n"] == len(samples)
        if cond != "none":
            base = {r["sample_id"]: r for r in _records(study, "none", row["task"], "one")}
            assert row["diff"] == pytest.approx(acc - sum(r["prediction"] == r["gold"] for r in base.values()) / len(base))


def test_valid_counts_table_matches_records(study):
    t = _by_name(study)["table10_valid_counts"]
    assert len(t.rows) == len(study.cells) * len(STYLES)
    for row in t.rows:
        cond = NAMES[row["condition"].split(" (")[0]]
        recs = _records(study, cond, row["task"], row["width"], row["style"])
        assert (row["valid"], row["n"]) == (sum(r["valid"] for r in recs), len(recs))
        strict = sum(bool(r["valid"]) and W.unaltered(r["edited_input"], str(r["parsed"])) for r in recs)
        assert row["valid, strict"] == (strict if row["style"] == "redaction" else "-")


def test_strict_redaction_is_read_from_new_records_and_judged_from_old_ones():
    """Records since 0.3 carry ``valid_strict``; older ones are judged from their answer and edited input (a real
    answer of the default model that dropped another handle's "@", from docs/results/cpu-medium)."""
    from selfexplain.reports.validity import strict_redaction

    old = {"valid": True, "input": "@JetBlue you can't beat jetblue in space's matter http://t.co/NRpWmGyv3e",
           "parsed": "JetBlue you can't beat jetblue in space's matter [REDACTED]",
           "edited_input": "@JetBlue you can't beat jetblue in space's matter [REDACTED]"}
    assert strict_redaction(old) is False
    assert strict_redaction({**old, "parsed": old["edited_input"]}) is True
    assert strict_redaction({**old, "valid_strict": True}) is True  # what the evaluator recorded wins
    assert strict_redaction({**old, "valid": False, "edited_input": None}) is False


def test_construction_quality_table_matches_records(study):
    t = _by_name(study)["table3_constructed_vs_original"]
    run = Path(study.stages["construct|tweets"]["run_dir"])
    built = [json.loads(l) for l in (run / "records.jsonl").read_text().splitlines()]
    originals = [json.loads(l) for l in next(run.glob("quality-*")).joinpath("records.jsonl").read_text().splitlines()]
    n_quality = len({r["sample_id"] for r in originals})
    for row in t.rows:
        orig = [r for r in originals if r["style"] == row["style"]]
        value, n_valid = _faith(orig)
        assert row["original"] == pytest.approx(value) and row["original valid"] == n_valid
        kept = [b for b in built[:n_quality] if b["constructed"][row["style"]]["explanation"] is not None]
        if row["style"] == "counterfactual":
            flips = [b["cf_new_prediction"] != b["attribution"]["prediction"] for b in kept]
        else:
            flips = [b["attribution"]["erased_predictions"][0] != b["attribution"]["prediction"] for b in kept]
        assert row["constructed"] == pytest.approx(sum(flips) / len(flips)) and row["constructed n"] == len(flips)
        # what the training file holds: the first train_size kept explanations, all samples over
        size = json.loads((run / "construction.json").read_text())["train_size"]
        kept = [b for b in built if b["constructed"][row["style"]]["explanation"] is not None][:size]
        if row["style"] == "counterfactual":
            flips = [b["cf_new_prediction"] != b["attribution"]["prediction"] for b in kept]
        else:
            flips = [b["attribution"]["erased_predictions"][0] != b["attribution"]["prediction"] for b in kept]
        assert row["train_flips"] == pytest.approx(sum(flips) / size) and row["training n"] == size


def test_lemmas_take_the_part_of_speech_the_word_is_most_used_in():
    """Noun first, then verb, made "rating" the verb "rat" and "was" the noun "wa" (WordNet's "WA")."""
    assert [lemma(w) for w in ("rating", "flights", "loved", "was", "saying", "went", "Delayed")] == \
        ["rating", "flight", "love", "be", "saying", "go", "delay"]
    assert lemma("coachella") == "coachella" and lemma(DELETION) == DELETION.casefold()


def test_lexicon_table_counts_lemmas_of_faithful_explanations(study):
    t = _by_name(study)["table6_frequent_words"]
    row = next(r for r in t.rows if r["condition"] == "w/ attribution" and r["task"] == "tweets" and r["style"] == "attribution")
    recs = [r for r in _records(study, "attribution", "tweets", "one", "attribution") if r["valid"] and r["faithful"]]
    counts = {}
    for r in recs:
        for w in r["parsed"]:
            counts[lemma(w)] = counts.get(lemma(w), 0) + 1
    shown = dict((w, int(n.rstrip(")"))) for w, n in (x.split(" (") for x in row["top words (count)"].split(", ")))
    assert row["faithful"] == len(recs)
    assert all(counts[w] == n for w, n in shown.items())
    assert min(shown.values()) >= sorted(counts.values(), reverse=True)[min(9, len(counts) - 1)]


def test_explanation_words_per_style():
    assert lemma("Loved") == "love" and lemma("stocks") == "stock" and lemma("went") == "go"
    assert explanation_words({"style": "attribution", "parsed": ["hate"]}) == ["hate"]
    red = {"style": "redaction", "input": "I hate rainy days!", "edited_input": "I [REDACTED] rainy [REDACTED]!"}
    assert explanation_words(red) == ["hate", "days"]
    cf = {"style": "counterfactual", "input": "I really hate rainy days", "edited_input": "I love rainy days"}
    assert explanation_words(cf) == ["love", DELETION]
    add = {"style": "counterfactual", "input": "good movie", "edited_input": "not a good movie"}
    assert explanation_words(add) == ["not", "a"]


def test_report_writes_every_table_and_figure(study, tmp_path):
    files = write_study_report(study.root, tmp_path / "out")
    names = {p.name for kind in files.values() for p in kind}
    for t in ("table3_constructed_vs_original", "table4_faithfulness", "table5_multiword", "table6_frequent_words",
              "table7_accuracy", "table10_valid_counts"):
        assert f"{t}.csv" in names
    for f in ("figure2_faithfulness_by_n.png", "figure3_cross_task.png", "figure4_cross_style.png"):
        assert f in names and (tmp_path / "out" / f).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (tmp_path / "out" / "report.md").read_text()
    assert "Table 4" in md and "[95% CI]" in md and "random baseline" in md
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out" / "table4_faithfulness.csv").read_text())))
    assert {"faithfulness", "ci_low", "ci_high", "p_value", "random"} <= set(rows[0])


def test_a_task_evaluated_in_two_widths_is_listed_once(tmp_path):
    root = make_study(tmp_path / "s")
    path = root / "study.json"
    study = json.loads(path.read_text())
    # As in the cpu-small preset: one evaluate entry per width.
    study["experiment"]["evaluate"] = [{**e, "widths": [w]} for e in study["experiment"]["evaluate"] for w in e["widths"]]
    path.write_text(json.dumps(study))
    from selfexplain.reports.tables import accuracy_table, cross_task_rows

    s = load_study(root)
    rows = accuracy_table(s).rows
    assert len({(r["task"], r["condition"]) for r in rows}) == len(rows)
    cross = cross_task_rows(s)
    assert len({(r["train_task"], r["eval_task"], r["style"]) for r in cross}) == len(cross)


def test_small_cells_are_marked_in_the_tables(study):
    t4 = _by_name(study)["table4_faithfulness"]
    assert all(r["faithfulness [95% CI]"].endswith("†") for r in t4.rows if r["n_valid"] < 50)
    assert "†" in t4.note


def test_table4_graded_measures_recomputed_from_records(study):
    t4 = _by_name(study)["table4_faithfulness"]
    row = next(r for r in t4.rows if r["condition"] == "w/ attribution" and r["style"] == "attribution")
    recs = [r for r in _records(study, "attribution", "tweets", "one", "attribution") if r["valid"]]
    shifts = [r["label_probs"][r["prediction"]] - r["new_label_probs"][r["prediction"]] for r in recs]
    rnd = [r["label_probs"][r["prediction"]] - r["random_label_probs"][r["prediction"]] for r in recs]
    assert row["shift"] == pytest.approx(sum(shifts) / len(shifts))
    assert row["vs_random_shift"] == pytest.approx(sum(s - q for s, q in zip(shifts, rnd)) / len(recs))
    assert row["verdict"] in ("beats chance", "does not", "undetermined") and row["verdict"] in row["vs random baseline"]
    assert row["vs_random_pairs"] == len(recs)
    # Power: the detectable rise over no training, from its rate and both valid counts.
    from selfexplain.stats import detectable_difference

    base = [r for r in _records(study, "none", "tweets", "one", "attribution") if r["valid"]]
    before = sum(r["faithful"] for r in base) / len(base)
    common = {r["sample_id"] for r in _records(study, "none", "tweets", "one", "attribution")}
    assert row["detectable"] == pytest.approx(detectable_difference(before, len(base), len(recs)))
    assert len(common) == row["n"]
    assert "detectable" in t4.csv().splitlines()[0]


def test_explorer_samples_carry_the_graded_measures(study):
    from selfexplain.reports.html import explorer_samples

    samples = explorer_samples(study)
    valid = [s for s in samples if s["valid"]]
    assert valid and all(s["shift"] is not None and s["random_shift"] is not None for s in valid)
    assert all(s["shift"] is None for s in samples if not s["valid"])


@pytest.mark.parametrize("damage", ["torn last line", "records deleted", "summary missing"])
def test_incomplete_cells_are_marked_everywhere_and_the_report_fails(tmp_path, damage):
    """A cut last line, a deleted records file or an unfinished run was reported as if complete, exit 0."""
    from typer.testing import CliRunner

    from selfexplain.cli import app

    root = make_study(tmp_path / "s")
    run = json.loads((root / "study.json").read_text())["cells"][0]["run_dir"]
    records = Path(run) / "records.jsonl"
    if damage == "torn last line":
        records.write_bytes(records.read_bytes()[:-40])
    elif damage == "records deleted":
        records.unlink()
    else:
        (Path(run) / "summary.json").unlink()
    res = CliRunner().invoke(app, ["report", str(root)])
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line and "1 of 15 cells are incomplete" in line and "--allow-incomplete" in line
    held = {"torn last line": 89, "records deleted": 0, "summary missing": 90}[damage]
    cells = list(csv.DictReader(io.StringIO((root / "report" / "cells.csv").read_text())))
    assert [(c["held"], c["complete"]) for c in cells].count((str(held), "False")) == 1
    assert sum(c["complete"] == "True" for c in cells) == 14
    t10 = (root / "report" / "table10_valid_counts.csv").read_text()
    assert t10.count("‡") == (0 if damage == "records deleted" else 3)  # its three styles (a cell with no records has no rows)
    md = (root / "report" / "report.md").read_text()
    assert "rerun the same `selfexplain reproduce`" in md and "‡" in (root / "report" / "report.html").read_text()
    assert CliRunner().invoke(app, ["report", str(root), "--allow-incomplete"]).exit_code == 0


def test_a_complete_study_has_no_marks(tmp_path):
    root = make_study(tmp_path / "s")
    write_study_report(root)
    assert "‡" not in (root / "report" / "report.md").read_text()


def test_the_baseline_rule_note_names_the_conditions_not_yet_rejudged(study):
    from selfexplain.reports.study import baseline_rule_note, condition_name

    assert baseline_rule_note(study) == ""  # every cell under today's rule
    old = [c for c in study.cells if c.condition != "none"]  # as if evaluated before it: no ``no_random`` field
    kept = [[r.pop("no_random") for r in c.records] for c in old]
    try:
        note = baseline_rule_note(study)
    finally:
        for c, values in zip(old, kept):
            for r, v in zip(c.records, values):
                r["no_random"] = v
    assert note.startswith(f"; in {len(old)} of the {len(study.cells)} cells (")
    assert condition_name("none") not in note and condition_name("attribution") in note
