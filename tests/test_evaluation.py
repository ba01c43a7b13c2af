"""The self-consistency pipeline and its aggregation, with a deterministic stand-in model."""

import json

from locations import FIXTURES
from selfexplain.api import evaluate
from selfexplain.evaluation import MAX_N, summarize, to_prediction


def _write_tweets(path, rows):
    path.write_text("".join(f'"{p}","1","d","q","u","{t}"\n' for p, t in rows))


def test_pipeline_conversation_structure_and_verdicts(tmp_path, keyword_backend):
    data = tmp_path / "s140.csv"
    _write_tweets(data, [(0, "I hate mondays")] * 1 + [(0, "bad bad day"), (4, "I like mondays"), (4, "nice one")])
    res = evaluate(task="sentiment140", data=str(data), limit=4, chunk_size=2, output_path=tmp_path / "runs", split="all",
                   backend_instance=keyword_backend)
    recs = res.records
    assert len(recs) == 4 * 3
    hate = {r["style"]: r for r in recs if r["input"] == "I hate mondays"}
    assert hate["attribution"]["prediction"] == "Negative"
    assert hate["attribution"]["edited_input"] == "I [REDACTED] mondays"
    assert hate["attribution"]["faithful"] is True  # 'hate' gone -> Positive
    assert hate["redaction"]["faithful"] is True
    assert hate["counterfactual"]["valid"] and hate["counterfactual"]["faithful"] is True
    # 'hate' is not a word of "bad bad day": invalid, excluded.
    bad = {r["style"]: r for r in recs if r["input"] == "bad bad day"}
    assert bad["attribution"]["reason"] == "word_not_in_input" and bad["attribution"]["faithful"] is None
    # Explanation requests continue the classification chat after the model's own answer.
    for chat in keyword_backend.generated:
        assert [m["role"] for m in chat] == ["user", "assistant", "user"]
        assert chat[1]["content"] in ("Positive", "Negative")
        assert chat[0]["content"].startswith("Text: ")
    # Re-classification is a fresh single-turn chat.
    assert all(len(c) == 1 for c in keyword_backend.scored)
    assert any("[REDACTED]" in c[0]["content"] for c in keyword_backend.scored)
    s = res.summary
    att = next(x for x in s.styles if x.style == "attribution")
    assert att.n == 4 and att.n_valid == 1 and att.faithfulness == 1.0
    assert att.invalid_reasons == {"word_not_in_input": 3}
    assert s.accuracy == 1.0
    assert json.loads((res.run_dir / "summary.json").read_text())["n_samples"] == 4
    assert (res.run_dir / "summary.md").read_text().count("| attribution |") == 1


def test_same_command_same_folder_other_settings_other_folder(tmp_path, keyword_backend):
    data = tmp_path / "s140.csv"
    _write_tweets(data, [(0, "I hate it"), (4, "I like it")])
    kw = dict(task="sentiment140", split="all", data=str(data), limit=2, output_path=tmp_path, backend_instance=keyword_backend)
    a = evaluate(**kw)
    b = evaluate(**kw)
    c = evaluate(**kw, width="multi")
    assert a.run_dir == b.run_dir != c.run_dir
    assert a.records == b.records  # nothing recomputed or duplicated
    assert len(keyword_backend.generated) == 2 * 3 * 2  # run a and run c only


def test_to_prediction_normalises_and_breaks_ties_to_first():
    p = to_prediction([-1.0, -1.0], ["A", "B"])
    assert p.label == "A" and abs(p.probs["A"] - 0.5) < 1e-12
    p = to_prediction([-3.0, -0.1], ["A", "B"])
    assert p.label == "B" and abs(sum(p.probs.values()) - 1) < 1e-12


def _rec(sid, style, valid, n=None, faithful=None, pred="Positive", gold="Positive", reason=None):
    return {"sample_id": sid, "style": style, "valid": valid, "n": n, "faithful": faithful, "prediction": pred,
            "gold": gold, "reason": reason, "explanation_truncated": False, "task": "t", "width": "multi"}


def test_summarize_faithfulness_per_n_and_reasons():
    recs = [
        _rec("a", "attribution", True, 1, True),
        _rec("b", "attribution", True, 1, False, gold="Negative"),
        _rec("c", "attribution", True, 2, True),
        _rec("d", "attribution", False, reason="unparseable"),
        _rec("e", "attribution", True, 7, False),
    ]
    s = summarize(recs)
    a = s.styles[0]
    assert (a.n, a.n_valid, a.n_faithful) == (5, 4, 2)
    assert a.faithfulness == 0.5
    assert a.per_n[1] == {"n": 2, "faithful": 1, "faithfulness": 0.5}
    assert a.per_n[2]["faithfulness"] == 1.0 and a.per_n[3]["faithfulness"] is None
    assert set(a.per_n) == set(range(1, MAX_N + 1))
    assert a.invalid_reasons == {"unparseable": 1}
    assert s.accuracy == 4 / 5


def test_vitaminc_context_reaches_prompts(tmp_path, keyword_backend):

    fx = FIXTURES / "vitaminc_task.json"
    evaluate(task="vitaminc", data=str(fx), limit=3, split="all", output_path=tmp_path, backend_instance=keyword_backend,
             styles=["redaction"])
    assert all("Claim" not in c[0]["content"] or "'" in c[0]["content"] for c in keyword_backend.scored)
    assert any("Tetris sold over 100 million copies ." in c[-1]["content"] for c in keyword_backend.generated)


def test_random_baseline_is_applied_reclassified_and_independent_of_chunking(tmp_path, keyword_backend):
    data = tmp_path / "s140.csv"
    _write_tweets(data, [(0, "I hate mondays"), (0, "bad bad day"), (4, "I like mondays"), (4, "nice one")])
    kw = dict(task="sentiment140", data=str(data), limit=4, split="all", backend_instance=keyword_backend)
    a = evaluate(chunk_size=2, output_path=tmp_path / "a", **kw)
    b = evaluate(chunk_size=4, output_path=tmp_path / "b", **kw)
    key = lambda r: (r["sample_id"], r["style"])  # noqa: E731
    assert sorted((key(r), r["random_input"]) for r in a.records) == sorted((key(r), r["random_input"]) for r in b.records)
    for r in a.records:
        if not r["valid"]:
            assert r["random_input"] is None and r["random_faithful"] is None
            continue
        assert r["random_input"].count("[REDACTED]") == 1 or r["style"] == "counterfactual"
        negative = "hate" in r["random_input"].lower() or "bad" in r["random_input"].lower()
        assert r["random_prediction"] == ("Negative" if negative else "Positive")
        assert r["random_faithful"] == (r["random_prediction"] != r["prediction"])
    att = next(s for s in a.summary.styles if s.style == "attribution")
    rec = next(r for r in a.records if r["style"] == "attribution" and r["valid"])
    assert att.n_random == 1 and att.random_faithfulness == float(rec["random_faithful"])
    assert a.summary.accuracy_ci[0] <= a.summary.accuracy <= a.summary.accuracy_ci[1]
    # The explanation redacts "hate": its baseline redacts one of the other words, never "hate" itself.
    assert rec["random_input"] in ("[REDACTED] hate mondays", "I hate [REDACTED]")


def test_an_input_without_other_words_has_no_random_pair_and_is_counted(tmp_path, keyword_backend):
    """"hate" alone: the attribution "hate" is valid, and no other word is left to draw its baseline from."""
    data = tmp_path / "s140.csv"
    _write_tweets(data, [(0, "hate"), (4, "I hate mondays")])
    run = evaluate(task="sentiment140", data=str(data), limit=2, split="all", backend_instance=keyword_backend,
                   output_path=tmp_path, styles=["attribution"])
    alone, longer = sorted((r for r in run.records if r["valid"]), key=lambda r: len(r["input"]))
    assert alone["input"] == "hate" and alone["random_input"] is None and alone["random_prediction"] is None
    assert alone["no_random"] == "too few other words" and longer["no_random"] is None
    (att,) = run.summary.styles
    assert (att.n_valid, att.n_random, att.n_no_random) == (2, 1, 1)
    assert "1 without (too few other words)" in (run.run_dir / "summary.md").read_text()
    assert json.loads((run.run_dir / "config.json").read_text())["random_baseline"] == "other words"


def test_records_carry_their_target_class_and_a_task_can_exclude_classes(tmp_path, keyword_backend):
    """Each valid explanation's target class is recorded and summarised; a task that excludes a class
    (``exclude_targets``) makes explanations targeting it invalid, and only then changes its fingerprint."""
    from selfexplain.tasks import get_task

    data = tmp_path / "s140.csv"
    _write_tweets(data, [(0, "I hate mondays"), (4, "nice one")])
    kw = dict(data=str(data), limit=2, split="all", backend_instance=keyword_backend, styles=["attribution"])
    run = evaluate(task="sentiment140", output_path=tmp_path / "a", **kw)
    (valid,) = [r for r in run.records if r["valid"]]
    assert valid["target_class"] == "content" and run.summary.styles[0].target_classes == {
        "content": {"n": 1, "faithful": int(bool(valid["faithful"]))}}
    assert "content 100% (" in (run.run_dir / "summary.md").read_text()
    task = get_task("sentiment140")
    strict = task.model_copy(update={"exclude_targets": ["content"]})
    assert task.model_copy(update={"exclude_targets": []}).fingerprint() == task.fingerprint() != strict.fingerprint()
    excluded = evaluate(task=strict, output_path=tmp_path / "b", **kw)
    assert not any(r["valid"] for r in excluded.records)
    assert excluded.summary.styles[0].invalid_reasons == {"excluded_target": 1, "word_not_in_input": 1}


def test_prompts_that_would_pass_the_context_window_are_not_run(tmp_path):
    """A 12,000-token tweet evaluated with an 8,192-token model used to exit 0: the model ran past its window and
    answered nonsense that counted like any other answer.  On the tiny stand-in with its window cut short: a
    sample whose classification does not fit is left out and named; an explanation that does not fit is not
    generated and counts as invalid with reason too_long."""
    import csv

    from selfexplain import api
    from selfexplain.backends.hf import HFBackend
    from selfexplain.evaluation import TOO_LONG, classify_chat, explain_chat
    from selfexplain.models import load_model
    from selfexplain.tasks import get_task
    from selfexplain.tasks.data import Example

    model, tokenizer, identity = load_model("standin:tulu-tiny")
    be = HFBackend.from_loaded(model, tokenizer, identity)
    task = get_task("sentiment140")
    short = ["good day", "bad day", "so happy now", "so sad now"]
    medium = "rain " * 120 + "today"
    long = "very " * 400 + "long"
    # The window: the medium tweet classifies, but its explanation prompt and reply do not fit.
    ex = Example("m", medium, "Negative")
    classify_len = be.prompt_lengths([classify_chat(task, medium, None)])[0]
    explain_len = be.prompt_lengths([explain_chat(task, ex, "Negative", "attribution", "one")])[0]
    window = classify_len + 20
    assert explain_len + 4 > window  # replies are capped at 4 tokens below
    model.config.max_position_embeddings = window
    data = tmp_path / "s140.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        for i, text in enumerate([*short, medium, long]):
            w.writerow(["0" if i % 2 else "4", str(i), "date", "NO_QUERY", "user", text])
    warnings: list[str] = []
    res = api.evaluate(model="standin:tulu-tiny", task="sentiment140", data=str(data), split="all", limit=6,
                       styles=["attribution"], chunk_size=8, output_path=tmp_path / "runs", backend_instance=be,
                       hooks=api.Hooks(on_warning=warnings.append), max_new_tokens=4)
    inputs = {r["input"]: r for r in res.records}
    assert long not in inputs and len(inputs) == 5
    assert inputs[medium]["reason"] == TOO_LONG and inputs[medium]["raw_explanation"] == ""
    assert all(inputs[t]["reason"] != TOO_LONG for t in short)
    assert res.summary.styles[0].invalid_reasons.get(TOO_LONG) == 1
    config = json.loads((res.run_dir / "config.json").read_text())
    assert len(config["too_long_to_classify"]) == 1
    assert warnings[0].startswith(f"1 of 6 samples left out: their classification prompt exceeds the model's "
                                  f"{window:,}-token window")
    assert warnings[1].startswith("1 explanation(s) not generated")
