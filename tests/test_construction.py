"""Pseudo-faithful explanations: the table 13 word filter, the table 2 template, files, counts."""

import json
from collections import Counter

import pytest

from locations import COMMITTED_STUDY, FIXTURES
from selfexplain import api
from selfexplain.attribution import WordAttribution
from selfexplain.construction import (
    CF_COPY,
    CF_EMPTY,
    CF_LABEL,
    CF_NO_CANDIDATE,
    CF_NOT_ONE_WORD,
    CF_REDACTED,
    CF_SAME,
    REPEATED,
    filter_counterfactual_word,
    input_words,
    ranked_word,
)
from selfexplain.errors import UserError
from selfexplain.tasks import get_task
from selfexplain.wordnet import is_english_word

LABELS = ["Positive", "Negative"]
# The cpu-medium study's construction, built before copies were rejected: its greedy proposals are real outputs.
COMMITTED = COMMITTED_STUDY / "runs" / "construct-tweets-qwen2.5-coder-0.5b-6e08882f801f"
# The default model's 20 most probable first tokens of three of those replies (hf backend, 2026-12-05).
TOP = [json.loads(l) for l in (FIXTURES / "cf_top_tokens.jsonl").open()]


@pytest.mark.parametrize("raw,word,reason", [
    ("love", "love", None),
    ("Love.", "Love", None),
    ("Output word: joy\nbecause...", "joy", None),
    ('"adore"', "adore", None),
    ("positive", None, CF_LABEL),
    ("[REDACTED]", None, CF_REDACTED),
    ("redacted", None, CF_REDACTED),
    ("very happy", None, CF_NOT_ONE_WORD),
    ("   ", None, CF_EMPTY),
    ("Hate", None, CF_SAME),
])
def test_counterfactual_word_filter(raw, word, reason):
    assert filter_counterfactual_word(raw, LABELS, "hate") == (word, reason)


@pytest.fixture(scope="module")
def committed():
    return {r["attribution"]["sample_id"]: r for r in map(json.loads, (COMMITTED / "records.jsonl").open())}


def test_copies_of_input_words_are_rejected_on_the_committed_proposals(committed):
    spec = get_task("tweets")
    reasons = Counter()
    for line in (COMMITTED / "train-counterfactual.jsonl").open():
        r = committed[json.loads(line)["sample_id"]]
        a = WordAttribution(**r["attribution"])
        raw = r["constructed"]["counterfactual"]["raw_counterfactual_word"]
        reasons[filter_counterfactual_word(raw, spec.forbidden_words, a.w_star, input_words(a))[1]] += 1
    # 305 of the 400 words the study's model was trained on copy a word of the tweet, case aside
    assert reasons == {CF_COPY: 305, None: 95}
    uber = WordAttribution(**committed["22abcb5184ad601b"]["attribution"])  # "... are uber cool!" -> "uber Uber"
    assert filter_counterfactual_word("Uber", LABELS, uber.w_star, input_words(uber)) == (None, CF_COPY)
    assert filter_counterfactual_word("Uber", LABELS, uber.w_star) == ("Uber", None)  # the paper's filter alone


def test_the_context_is_part_of_the_input():
    a = WordAttribution("s", "A dog runs.", "An animal moves.", "Yes", "Yes", "No", {}, {}, ["A", "dog", "runs"],
                        [1, 1, 1], [0.0] * 3, [0.0] * 3, ["Yes"] * 3, "dog", 1)
    assert input_words(a) == {"a", "dog", "runs", "an", "animal", "moves"}
    assert filter_counterfactual_word("Animal!", ["Yes", "No", "Maybe"], "dog", input_words(a)) == (None, CF_COPY)


@pytest.mark.parametrize("case", TOP, ids=[c["sample_id"] for c in TOP])
def test_ranked_candidates_on_the_default_models_first_tokens(case, committed):
    a = WordAttribution(**committed[case["sample_id"]]["attribution"])
    top = [tuple(t) for t in case["top_tokens"]]
    assert top[0][0] == case["greedy"] == committed[case["sample_id"]]["constructed"]["counterfactual"]["raw_counterfactual_word"]
    assert ranked_word(top, get_task("tweets").forbidden_words, a.w_star, input_words(a)) == tuple(case["expected"])
    assert ranked_word(top[:1], get_task("tweets").forbidden_words, a.w_star, input_words(a)) is None


def test_a_piece_of_the_redacted_marker_is_no_candidate(committed):
    """The default model often opens its reply with "Red" (of "[REDACTED]"): 30 of the first 400 ranked words."""
    a = WordAttribution(**committed["67c23a78602264f0"]["attribution"])
    top = [tuple(t) for t in next(c for c in TOP if c["sample_id"] == "67c23a78602264f0")["top_tokens"]]
    labels = get_task("tweets").forbidden_words
    # past "No", "Air" and "Flight", the next whole word is "Red" (a piece of the marker), then "Airport"
    rest = [t for t in top if t[0] not in ("No", "Air", "Flight")]
    assert [t[0] for t in rest].index("Red") < [t[0] for t in rest].index("Airport")
    assert ranked_word(rest, labels, a.w_star, input_words(a))[0] == "Airport"
    assert ranked_word([("Red", -1.0), ("Redact", -1.1), ("Good", -2.0)], labels, a.w_star, input_words(a)) == ("Good", 3)


def test_whole_english_words_only():
    # word pieces among those first tokens, and tokens that are not letters, are not candidates; "Ins" is
    # (WordNet's abbreviation of the Immigration and Naturalization Service)
    assert is_english_word("Ins")
    assert not any(is_english_word(t) for t in ["Sk", "un", "Un", "Neg", "Fl", "S", "P", "Re", "uber", " ",
                                                "@united", "#codecon", "42", "don't", "café"])
    assert all(is_english_word(t) for t in ["Driver", "get", "No", " Airport", "Safety", "happier", "delayed", "not"])


def _csv(path, rows):
    path.write_text("".join(f'"{p}","1","d","q","u","{t}"\n' for p, t in rows))


@pytest.fixture
def tweets_csv(tmp_path):
    """40 tweets: 10 with one "hate", 10 with "bad" twice (no one-word redaction or counterfactual), 20 positive."""
    data = tmp_path / "s.csv"
    rows = [(0, f"I hate day {i}") for i in range(10)] + [(0, f"bad bad night {i}") for i in range(10)]
    rows += [(4, f"I like it {i}") for i in range(20)]
    _csv(data, rows)
    return data


@pytest.fixture
def cf_backend(keyword_backend):
    keyword_backend.replies["Replace [REDACTED] with exactly one word"] = "love"
    return keyword_backend


def test_construct_end_to_end_with_stand_in(tmp_path, cf_backend, tweets_csv):
    data = tweets_csv
    res = api.construct(task="sentiment140", data=str(data), limit=20, chunk_size=8, output_path=tmp_path,
                        backend_instance=cf_backend, quality=8)
    styles = res.stats["styles"]
    assert res.stats["n_samples"] == 20
    assert styles["attribution"]["kept"] == 20
    # "bad" occurs twice: no one-word redaction or counterfactual for those samples.
    n_bad = sum(1 for l in (res.run_dir / "records.jsonl").open() if "bad bad" in l)
    assert styles["redaction"]["dropped"].get(REPEATED, 0) == n_bad
    rec = [json.loads(l) for l in res.files["counterfactual"].open()]
    hate = next(r for r in rec if r["w_star"] == "hate")
    assert hate["edited_input"].startswith("I love day") and hate["counterfactual_word"] == "love"
    roles = [m["role"] for m in hate["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]
    assert hate["messages"][1]["content"] == hate["prediction"] == "Negative"
    assert hate["messages"][2]["content"].startswith("Question: Edit the text by adding")
    assert hate["messages"][3]["content"] == f"Answer: {hate['edited_input']}"
    att = [json.loads(l) for l in res.files["attribution"].open()]
    assert all(r["messages"][3]["content"] == f"Answer: {r['w_star']}" for r in att)
    # Table 3: constructed explanations flip the stand-in model; compared on the same 8 samples.
    q = res.stats["quality"]
    assert q["attribution"]["constructed_n"] <= 8 and q["attribution"]["original_valid"] <= 8
    assert (res.run_dir / "construction.md").read_text().count("| attribution |") == 2

    import datasets

    ds = datasets.load_dataset("json", data_files=str(res.files["redaction"]), split="train")
    assert len(ds) == styles["redaction"]["kept"] and "messages" in ds.column_names


def test_construct_uses_train_pool_only(tmp_path, cf_backend):
    from selfexplain.tasks import get_task

    data = tmp_path / "s.csv"
    _csv(data, [(0, f"I hate thing {i}") for i in range(20)] + [(4, f"I like thing {i}") for i in range(20)])
    res = api.construct(task="sentiment140", data=str(data), limit=10, output_path=tmp_path, backend_instance=cf_backend)
    train_ids = {json.loads(l)["attribution"]["sample_id"] for l in (res.run_dir / "records.jsonl").open()}
    test = api.sample_examples(get_task("sentiment140"), 8, 0, str(data), False, "test")
    assert not train_ids & {e.id for e in test}


def test_evaluation_only_task_is_refused(tmp_path, cf_backend):

    fx = FIXTURES / "vitaminc_task.json"
    with pytest.raises(UserError, match="evaluation-only"):
        api.construct(task="vitaminc", data=str(fx), limit=3, output_path=tmp_path, backend_instance=cf_backend)


def test_every_style_trains_on_the_same_number(tmp_path, cf_backend, tweets_csv):
    data = tweets_csv
    res = api.construct(task="sentiment140", data=str(data), limit=20, chunk_size=8, output_path=tmp_path,
                        backend_instance=cf_backend)
    kept = {s: v["kept"] for s, v in res.stats["styles"].items()}
    assert kept["attribution"] > min(kept.values())  # the styles kept different numbers ...
    sizes = {s: sum(1 for _ in f.open()) for s, f in res.files.items()}
    assert set(sizes.values()) == {min(kept.values())} == {res.stats["train_size"]}  # ... and train on the same
    assert "every style trains on" in res.stats["sizes_note"]


def test_construct_until_each_style_has_kept_n(tmp_path, cf_backend):
    data = tmp_path / "s.csv"
    rows = [(0, f"bad bad night {i}") for i in range(10)] + [(0, f"I hate day {i}") for i in range(10)]
    rows += [(4, f"I like it {i}") for i in range(20)]
    _csv(data, rows)
    res = api.construct(task="sentiment140", data=str(data), limit=30, chunk_size=4, output_path=tmp_path,
                        backend_instance=cf_backend, per_style=5)
    assert all(v["kept"] >= 5 for v in res.stats["styles"].values())
    assert res.stats["n_samples"] < 30  # stopped once every style had 5
    assert {sum(1 for _ in f.open()) for f in res.files.values()} == {5}
    # Resumed (nothing to compute): the same records.
    again = api.construct(task="sentiment140", data=str(data), limit=30, chunk_size=4, output_path=tmp_path,
                          backend_instance=cf_backend, per_style=5)
    assert again.stats == res.stats and again.run_dir == res.run_dir


class _MassOutsideLabels:
    """Erasing 'alpha' moves raw probability most, erasing 'beta' moves the label-normalised one most."""

    identity = {"kind": "test", "name": "mass"}
    RAW = {"": (0.8, 0.1), "alpha": (0.3, 0.1), "beta": (0.5, 0.4)}  # (Negative, Positive) when that word is erased

    def label_logprobs(self, chats, labels):
        import math

        out = []
        for chat in chats:
            text = chat[-1]["content"]
            erased = next((w for w in ("alpha", "beta") if w not in text), "")
            neg, pos = self.RAW[erased]
            out.append([math.log(pos if l == "Positive" else neg) for l in labels])
        return out


def test_influence_form_chooses_w_star():
    from selfexplain.attribution import attribute
    from selfexplain.tasks import get_task
    from selfexplain.tasks.data import Example

    ex = [Example("e", "alpha beta", "Negative")]
    norm = attribute(_MassOutsideLabels(), get_task("sentiment140"), ex)[0]
    raw = attribute(_MassOutsideLabels(), get_task("sentiment140"), ex, "raw")[0]
    assert (norm.w_star, raw.w_star) == ("beta", "alpha")
    with pytest.raises(UserError, match="--influence"):
        api.construct(task="sentiment140", influence="softmax")


def test_only_the_trained_styles_are_balanced(tmp_path, cf_backend, tweets_csv):
    data = tweets_csv
    res = api.construct(task="sentiment140", data=str(data), limit=20, chunk_size=8, output_path=tmp_path,
                        backend_instance=cf_backend, styles=["attribution"])
    assert res.stats["train_size"] == res.stats["styles"]["attribution"]["kept"] == 20
    assert sum(1 for _ in res.files["attribution"].open()) == 20
    assert sum(1 for _ in res.files["redaction"].open()) == res.stats["styles"]["redaction"]["kept"] < 20


def test_a_copied_word_is_replaced_by_the_best_ranked_candidate(tmp_path, keyword_backend):
    keyword_backend.replies["Replace [REDACTED] with exactly one word"] = "Day"
    data = tmp_path / "s.csv"
    _csv(data, [(0, f"I hate day {i}") for i in range(10)] + [(4, f"I like it {i}") for i in range(10)])
    res = api.construct(task="sentiment140", data=str(data), limit=12, chunk_size=4, output_path=tmp_path,
                        backend_instance=keyword_backend)
    recs = [json.loads(l) for l in (res.run_dir / "records.jsonl").open()]
    hate = [r["constructed"]["counterfactual"] for r in recs if r["attribution"]["w_star"] == "hate"]
    # "Day" copies "day": the label "Negative" and w* "hate" are passed over, and "Lov" is no word
    assert {(c["counterfactual_word"], c["greedy_rejected"], c["candidate_rank"], c["raw_counterfactual_word"],
             c["flips"]) for c in hate} == {("love", CF_COPY, 4, "Day", True)}
    like = [r["constructed"]["counterfactual"] for r in recs if "like" in r["attribution"]["text"]]
    assert {(c["counterfactual_word"], c["candidate_rank"], c["flips"]) for c in like} == {("Day", None, False)}
    assert len(keyword_backend.ranked) == 6  # only the rejected proposals are ranked
    styles = res.stats["styles"]
    assert styles["counterfactual"]["replaced"] == {CF_COPY: 6}
    assert {s: (v["flips"], v["kept"], v["train_flips"], v["train"]) for s, v in styles.items()} == {
        "attribution": (6, 12, 6, 12), "redaction": (6, 12, 6, 12), "counterfactual": (6, 12, 6, 12)}
    assert {json.loads(l)["flips"] for l in res.files["counterfactual"].open()} == {True, False}
    md = (res.run_dir / "construction.md").read_text()
    assert "0.500 [0.21, 0.79]† (6/12)" in md and "cf_word_in_input 6" in md

    # --cf-candidates 0: the copies are dropped; a run of its own
    none = api.construct(task="sentiment140", data=str(data), limit=12, chunk_size=4, output_path=tmp_path,
                         backend_instance=keyword_backend, cf_candidates=0)
    assert none.run_dir != res.run_dir and none.stats["styles"]["counterfactual"]["dropped"] == {CF_COPY: 6}
    # nothing passes among the candidates: dropped, and why the greedy word was not used is kept
    keyword_backend.top = [("Negative", -0.1), ("hate", -0.2)]
    few = api.construct(task="sentiment140", data=str(data), limit=12, chunk_size=4, output_path=tmp_path,
                        backend_instance=keyword_backend, cf_candidates=2)
    assert few.stats["styles"]["counterfactual"]["dropped"] == {CF_NO_CANDIDATE: 6}


def test_only_flipping_examples_are_kept_on_request(tmp_path, cf_backend):
    data = tmp_path / "s.csv"
    _csv(data, [(0, f"I hate day {i}") for i in range(10)] + [(4, f"I like it {i}") for i in range(10)])
    res = api.construct(task="sentiment140", data=str(data), limit=12, chunk_size=4, output_path=tmp_path,
                        backend_instance=cf_backend, only_flipping=True)
    assert res.stats["train_size"] == 6 and res.stats["only_flipping"]
    for style, f in res.files.items():
        assert [json.loads(l)["flips"] for l in f.open()] == [True] * 6, style
    assert "--only-flipping" in (res.run_dir / "construction.md").read_text()
    with pytest.raises(UserError, match="--cf-candidates"):
        api.construct(task="sentiment140", cf_candidates=-1)
