"""Task registry, prompts, loaders on canonical-format fixtures, splits."""

import json

import pytest

from locations import FIXTURES, ROOT
from selfexplain.errors import UserError
from selfexplain.tasks import get_task, load_task_file, render, task_names
from selfexplain.tasks.data import load_examples, split_examples


def test_builtin_tasks_registered():
    assert {"sentiment140", "snli", "agnews", "tweets", "vitaminc"} <= set(task_names())
    assert get_task("snli").labels == ["Yes", "No", "Maybe"]
    assert get_task("agnews").labels == ["World", "Sport", "Business", "Tech"]


def test_paper_prompts_verbatim():
    p = get_task("sentiment140").prompts
    assert render(p.classify, input="I hate it") == (
        "Text: I hate it\n\nQuestion: What would you classify the sentiment of the text as? The text can contain "
        "redacted words marked with [REDACTED]. Answer either 'Positive' or 'Negative' in a single word. "
        "Do not explain the answer."
    )
    assert p.attribution.multi.endswith('Answer in JSON format as {"words": ["word1", "word2", ..., "wordN"]}')
    assert get_task("tweets").prompts == p
    snli = get_task("snli").prompts
    assert "'{context}'" in snli.redaction.one and "'{context}'" in snli.classify


def test_render_leaves_json_braces_alone():
    assert render('{"a": "{input}"} {other}', input="x") == '{"a": "x"} {other}'


def test_sentiment140_csv():
    exs = load_examples(get_task("sentiment140"), str(FIXTURES / "sentiment140.csv"))
    assert len(exs) == 9  # the polarity-2 row is dropped
    assert exs[0].label == "Negative" and exs[0].text.startswith("@switchfoot")
    assert {e.label for e in exs} == {"Positive", "Negative"}
    assert "  " not in exs[1].text  # whitespace normalised


def test_snli_jsonl_drops_no_consensus():
    exs = load_examples(get_task("snli"), str(FIXTURES / "snli.jsonl"))
    assert len(exs) == 6
    assert exs[0].context == "A person is training his horse for a competition." and exs[0].label == "Maybe"
    assert {e.label for e in exs} == {"Yes", "No", "Maybe"}


def test_agnews_titles_only():
    exs = load_examples(get_task("agnews"), str(FIXTURES / "agnews.csv"))
    assert exs[0].text == "Wall St. Bears Claw Back Into the Black (Reuters)" and exs[0].label == "Business"
    assert {e.label for e in exs} == {"World", "Sport", "Business", "Tech"}


def test_vitaminc_bigbench_format():
    exs = load_examples(get_task("vitaminc"), str(FIXTURES / "vitaminc_task.json"))
    assert [e.label for e in exs] == ["Neither", "False", "True"]
    assert exs[2].context == "Tetris sold over 100 million copies ." and exs[2].text.startswith("Tetris:")
    assert get_task("vitaminc").training_allowed is False


@pytest.mark.embedded
def test_tweets_from_package():
    exs = load_examples(get_task("tweets"))
    labels = [e.label for e in exs]
    assert labels.count("Positive") > 6000 and labels.count("Negative") > 15000


def test_a_file_read_again_is_parsed_again_only_when_its_bytes_changed(tmp_path):
    """Parsed files are kept per process (a study reads its data in every stage): a changed file, even of the
    same size in the same clock tick, is read anew, and a caller's changes to its list reach no other caller."""
    task, f = get_task("snli"), tmp_path / "s.jsonl"
    row = {"sentence1": "A dog runs.", "sentence2": "An animal moves.", "gold_label": "entailment"}
    f.write_text(json.dumps(row) + "\n")
    first = load_examples(task, str(f))
    first.clear()
    assert [e.text for e in load_examples(task, str(f))] == ["A dog runs."]
    f.write_text(json.dumps({**row, "sentence1": "A cat runs."}) + "\n")  # same size
    assert [e.text for e in load_examples(task, str(f))] == ["A cat runs."]


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="file not found"):
        load_examples(get_task("snli"), str(tmp_path / "nope.jsonl"))


@pytest.mark.parametrize(
    "task,name,content,message",
    [
        ("agnews", "ag.csv", "Class Index,Headline\n1,Some news\n", r"ag.csv: row 2: missing column 'Title'"),
        ("agnews", "ag.csv", "Class Index,Title,Description\n1,Fine title,x\n2,   ,y\n", r"row 3: field 'Title' is empty"),
        ("snli", "s.jsonl", '{"sentence1": 3, "sentence2": "x", "gold_label": "neutral"}\n',
         r"line 1: field 'sentence1' is not text"),
        ("snli", "s.jsonl", '{"sentence1": "a", "sentence2": "b", "gold_label": "maybe-ish"}\n',
         r"unknown label 'maybe-ish'"),
        ("snli", "s.jsonl", '{"sentence1": "a",\n', r"line 1: not valid JSON"),
    ],
    ids=["missing-column", "empty-text", "non-text-field", "unknown-label", "bad-json-line"],
)
def test_a_bad_data_file_is_one_line_naming_the_row(tmp_path, task, name, content, message):
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(UserError, match=message):
        load_examples(get_task(task), str(f))


def test_unknown_task():
    with pytest.raises(UserError, match="known tasks"):
        get_task("imdb")


def test_user_task_yaml(tmp_path):
    f = tmp_path / "spam.yaml"
    src = (ROOT / "src/selfexplain/tasks/configs/agnews.yaml").read_text()
    f.write_text(src.replace("name: agnews", "name: mytopics"))
    t = load_task_file(f)
    assert t.name == "mytopics"
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nlabels: [A]\n")
    with pytest.raises(UserError, match="bad.yaml: field"):
        load_task_file(bad)
    # Word classes an explanation may not target: known classes only, named in one line.
    f.write_text(src.replace("name: agnews", "name: mytopics") + "exclude_targets: [handle, url]\n")
    assert load_task_file(f).exclude_targets == ["handle", "url"]
    f.write_text(src.replace("name: agnews", "name: mytopics") + "exclude_targets: [handles]\n")
    with pytest.raises(UserError, match=r"spam.yaml: .*unknown word class\(es\) \['handles'\]; known: content, stop"):
        load_task_file(f)


def _fake(n_pos, n_neg):
    from selfexplain.tasks.data import Example

    return [Example(f"p{i}", f"good {i}", "Positive") for i in range(n_pos)] + [
        Example(f"n{i}", f"bad {i}", "Negative") for i in range(n_neg)
    ]


def test_split_balanced_disjoint_seeded():
    exs = _fake(100, 300)
    s = split_examples(exs, ["Positive", "Negative"], n_train=60, n_test=20, seed=1)
    assert [e.label for e in s.test].count("Positive") == 10
    assert [e.label for e in s.train].count("Negative") == 30
    assert not {e.id for e in s.train} & {e.id for e in s.test}
    again = split_examples(list(reversed(exs)), ["Positive", "Negative"], n_train=60, n_test=20, seed=1)
    assert again == s  # input order does not matter
    other = split_examples(exs, ["Positive", "Negative"], n_test=20, seed=2)
    assert other.test != s.test


def test_test_split_never_overlaps_any_train_size():
    exs = _fake(50, 50)
    test = {e.id for e in split_examples(exs, ["Positive", "Negative"], n_test=20, seed=0).test}
    train = {e.id for e in split_examples(exs, ["Positive", "Negative"], n_train=80, seed=0).train}
    assert not test & train


def test_split_too_large():
    with pytest.raises(UserError, match="only"):
        split_examples(_fake(10, 10), ["Positive", "Negative"], n_test=10, seed=0)


# ---- property-based: any mapping in a task file is a task or one error line -----------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st

from strategies import VALUES as _yaml_values  # noqa: E402
from strategies import loads_or_one_line

_TASK_KEYS = ["name", "description", "labels", "input_name", "context_name", "training_allowed", "label_words",
              "prompts", "source", "from_task", "format", "path", "text_field", "label_field", "label_map"]
_task_like = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["t", "../x", "", "ok-task"]) | st.text(max_size=6),
    "labels": st.lists(st.text(max_size=5), max_size=3) | _yaml_values,
    "prompts": st.fixed_dictionaries({}, optional={"from_task": _yaml_values | st.sampled_from(["tweets", "nope"])})
    | _yaml_values,
    "source": st.fixed_dictionaries({}, optional={k: _yaml_values | st.just("csv") for k in _TASK_KEYS[9:]})
    | _yaml_values,
    "training_allowed": _yaml_values, "context_name": _yaml_values, "label_words": _yaml_values,
}) | st.dictionaries(st.sampled_from(_TASK_KEYS) | st.text(max_size=6), _yaml_values, max_size=6)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mapping=_task_like)
def test_any_mapping_in_a_task_file_is_a_task_or_one_error_line(tmp_path, mapping):
    from selfexplain.tasks import TaskSpec

    loads_or_one_line(load_task_file, tmp_path / "task.yaml", mapping, TaskSpec)


def test_intent_recognition_reads_bigbench_without_a_context():
    """An unseen task the default model is above chance on: BIG-bench's layout without a second input."""
    task = get_task("intent_recognition")
    exs = load_examples(task, str(FIXTURES / "intent_task.json"))
    assert [e.label for e in exs] == task.labels and all(e.context is None for e in exs)
    assert exs[2].text == "Will it snow in Denver tomorrow"  # "Utterance: " is the prompt's, not the input's
    assert task.training_allowed is False and "{context}" not in task.prompts.classify


def test_files_saved_with_a_byte_order_mark_read_like_any_other(tmp_path):
    """A spreadsheet's "CSV UTF-8" export starts with a byte-order mark; it used to become part of the first
    column's name: `missing column 'text' (has: \\ufefftext, label)`, the mark invisible in the message."""
    from selfexplain.experiments import load_experiment

    bom = "\ufeff"
    plain = tmp_path / "ag.csv"
    plain.write_text("Class Index,Title,Description\n1,Some news,x\n3,Stocks up,y\n", encoding="utf-8")
    marked = tmp_path / "ag-bom.csv"
    marked.write_text(bom + plain.read_text(encoding="utf-8"), encoding="utf-8")
    task = get_task("agnews")
    assert [e.text for e in load_examples(task, str(marked))] == [e.text for e in load_examples(task, str(plain))]
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text(bom + '{"sentence1": "a cat", "sentence2": "an animal", "gold_label": "entailment"}\n',
                     encoding="utf-8")
    assert load_examples(get_task("snli"), str(jsonl))[0].label == "Yes"
    yaml_file = tmp_path / "exp.yaml"
    yaml_file.write_text(bom + "name: bom\nevaluate: [{task: tweets}]\n", encoding="utf-8")
    assert load_experiment(str(yaml_file)).name == "bom"
    task_file = tmp_path / "mytopics.yaml"
    src = (ROOT / "src/selfexplain/tasks/configs/agnews.yaml").read_text()
    task_file.write_text(bom + src.replace("name: agnews", "name: mytopics"), encoding="utf-8")
    assert load_task_file(task_file).name == "mytopics"
