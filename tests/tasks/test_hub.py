"""Every hub source the presets name, loaded offline through the code path of ``--hub``.

The hub call (``tasks.data.load_hub_dataset``) and the download of original archives
(``tasks.prepare.fetch``) are the two seams: tests hand them local stand-ins with the
exact features, dtypes and file formats of the real sources (from their dataset cards
and original loaders).  Nothing here reaches a network.
"""

import hashlib
import io
import zipfile
from pathlib import Path

import datasets
import pytest

from locations import FIXTURES
from selfexplain.errors import UserError
from selfexplain.experiments import load_experiment, preset_names
from selfexplain.tasks import data as D
from selfexplain.tasks import get_task
from selfexplain.tasks import prepare as P
from selfexplain.training import read_chats

# stanfordnlp/snli (Parquet): premise, hypothesis: string; label: ClassLabel, -1 where annotators disagreed.
SNLI_FEATURES = datasets.Features({
    "premise": datasets.Value("string"),
    "hypothesis": datasets.Value("string"),
    "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"]),
})
# allenai/tulu-v2-sft-mixture: dataset, id: string; messages: list of {role, content} strings.
TULU_FEATURES = datasets.Features({
    "dataset": datasets.Value("string"),
    "id": datasets.Value("string"),
    "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
})


def _snli_rows(n_premises=12):
    rows = []
    for i in range(n_premises):
        premise = f"A person number {i} rides a horse over a fence."
        rows += [{"premise": premise, "hypothesis": "A person is outdoors.", "label": 0},
                 {"premise": premise, "hypothesis": "A person is at a diner.", "label": 2},
                 {"premise": premise, "hypothesis": "A person trains for a show.", "label": 1}]
    rows.append({"premise": "Nobody agreed here.", "hypothesis": "Something.", "label": -1})
    return rows


@pytest.fixture
def hub(monkeypatch):
    served = {}

    def fake(path, name, split):
        if path not in served:
            raise UserError(f"hub dataset {path}: could not be loaded (offline test)")
        return served[path]

    monkeypatch.setattr(D, "load_hub_dataset", fake)
    return served


def test_snli_hub_schema_labels_and_dropped_rows(hub):
    hub["stanfordnlp/snli"] = datasets.Dataset.from_list(_snli_rows(), features=SNLI_FEATURES)
    exs = D.load_examples(get_task("snli"), hub=True)
    assert len(exs) == 36  # the -1 row is dropped
    by_hyp = {e.context: e.label for e in exs[:3]}
    assert by_hyp == {"A person is outdoors.": "Yes", "A person is at a diner.": "No", "A person trains for a show.": "Maybe"}


def test_snli_split_keeps_each_premise_on_one_side(hub):
    hub["stanfordnlp/snli"] = datasets.Dataset.from_list(_snli_rows(40), features=SNLI_FEATURES)
    exs = D.load_examples(get_task("snli"), hub=True)
    split = D.split_examples(exs, get_task("snli").labels, n_train=60, n_test=15, seed=0)
    assert not {e.text for e in split.train} & {e.text for e in split.test}
    assert len(split.test) == 15 and len(split.train) == 60


def test_tulu_mixture_replay_through_the_seam(hub):
    hub["allenai/tulu-v2-sft-mixture"] = datasets.Dataset.from_list([
        {"dataset": "flan_v2", "id": "flan_v2_0", "messages": [
            {"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi."}]},
    ], features=TULU_FEATURES)
    rows = read_chats("hub:allenai/tulu-v2-sft-mixture")
    assert rows[0]["messages"][1] == {"role": "assistant", "content": "Hi."}


def _serve(monkeypatch, files: dict[str, bytes]):
    def fetch(url, target):
        Path(target).write_bytes(files[url])

    monkeypatch.setattr(P, "fetch", fetch)


def test_sentiment140_hub_fetches_the_original_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFEXPLAIN_CACHE", str(tmp_path / "cache"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:  # the archive's layout: two header-less latin-1 CSVs
        z.write(FIXTURES / "sentiment140.csv", "training.1600000.processed.noemoticon.csv")
        z.writestr("testdata.manual.2009.06.14.csv", '"4","3","Mon May 11 03:17:40 UTC 2009","kindle2","tpryan","I &lt;3 my Kindle2."\n')
    blob = buf.getvalue()
    monkeypatch.setattr(P, "SENTIMENT140_ZIP", P.Download(P.SENTIMENT140_ZIP.url, "sha256",
                                                          hashlib.sha256(blob).hexdigest(), "1 kB"))
    _serve(monkeypatch, {P.SENTIMENT140_ZIP.url: blob})
    exs = D.load_examples(get_task("sentiment140"), hub=True)
    assert len(exs) == 9 and {e.label for e in exs} == {"Positive", "Negative"}
    test = D.load_examples(get_task("sentiment140"), str(tmp_path / "cache" / "sentiment140" / "test.csv"))
    assert test[0].text == "I <3 my Kindle2."  # HTML entities decoded when loading
    # Later runs read the prepared files without fetching.
    monkeypatch.setattr(P, "fetch", lambda url, target: pytest.fail("fetched twice"))
    assert len(D.load_examples(get_task("sentiment140"))) == 9


def test_a_corrupt_download_is_refused_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFEXPLAIN_CACHE", str(tmp_path / "cache"))
    _serve(monkeypatch, {P.SENTIMENT140_ZIP.url: b"not the archive"})
    with pytest.raises(UserError, match="trainingandtestdata.zip: sha256 mismatch"):
        D.load_examples(get_task("sentiment140"), hub=True)
    assert not list((tmp_path / "cache").rglob("*.zip"))


def test_agnews_hub_reads_titles_only(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFEXPLAIN_CACHE", str(tmp_path / "cache"))
    # Zhang et al.'s CSV: the Kaggle file without its header line.
    raw = (FIXTURES / "agnews.csv").read_text().split("\n", 1)[1].encode()
    files = {d.url: raw for d in P.AGNEWS_CSV.values()}
    monkeypatch.setattr(P, "AGNEWS_CSV", {k: P.Download(d.url, "md5", hashlib.md5(raw).hexdigest(), "1 kB")
                                          for k, d in P.AGNEWS_CSV.items()})
    _serve(monkeypatch, files)
    exs = D.load_examples(get_task("agnews"), hub=True)
    assert exs[0].text == "Wall St. Bears Claw Back Into the Black (Reuters)"
    assert all(len(e.text.split()) < 20 for e in exs)  # titles, not title + description


def test_default_sentiment140_without_data_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFEXPLAIN_CACHE", str(tmp_path / "cache"))
    with pytest.raises(UserError, match="selfexplain data prepare sentiment140"):
        D.load_examples(get_task("sentiment140"))


def test_every_hub_source_of_every_preset_is_covered_here():
    """A preset may only name hub sources whose exact schema a test above checks."""
    tested = {"stanfordnlp/snli", "allenai/tulu-v2-sft-mixture"}
    prepared = {"sentiment140", "agnews"}
    for name in preset_names():
        exp = load_experiment(name)
        hub_tasks = [e.task for e in exp.evaluate if e.hub] + (exp.train_tasks if exp.construction.hub else [])
        for t in hub_tasks:
            src = get_task(t).source
            assert (src.hub is not None and src.hub.path in tested) or (src.hub is None and src.prepare in prepared), (name, t)
        if exp.train.replay and exp.train.replay.startswith("hub:"):
            assert exp.train.replay[4:] in tested, name
