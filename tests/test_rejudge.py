"""Re-judging finished runs: only baselines that hit the explanation are drawn again, and the result is what a
fresh run under today's rules would hold for them; on the committed study's records and on a stand-in."""

import json
import shutil
from pathlib import Path

import pytest

from locations import COMMITTED_STUDY
from selfexplain import api
from selfexplain import styles as S
from selfexplain import words as W
from selfexplain.api import evaluate
from selfexplain.rejudge import MissingModel, Rejudged, hits_explanation, rejudge_run, rejudge_study, unchanged_baseline
from selfexplain.store import iter_records

RUNS = COMMITTED_STUDY / "runs"
SFT_ONE_WORD = RUNS / "evaluate-tweets-qwen2.5-coder-0.5b-4894bdeab5ae"  # w/ attribution, 600 one-word tweets
TWEETS = [(0, "hate"), (0, "I hate mondays"), (0, "we hate rainy mondays a lot"), (0, "hate it, hate it"),
          (0, "they really hate long queues"), (0, "I hate waking up early"), (4, "I like mondays"),
          (4, "nice one"), (4, "what a lovely sunny day"), (4, "good food and good friends"),
          (4, "sunny mondays are fine"), (4, "I like it a lot")]


def test_the_committed_sft_attribution_baselines_no_longer_repeat_the_explanation():
    """40 of the 532 baselines of the SFT model's attributions were its own word (the issue's count, under the rule
    of the study); re-judged with the retrained adapter (its hash checked), none is, and the run says how many
    baselines of all three styles were drawn again."""
    config = json.loads((SFT_ONE_WORD / "config.json").read_text())
    assert config["model"].get("adapter") and config["random_baseline"] == "other words"
    assert config["runtime"]["rejudged"] == {
        "kept": 596, "no_random": 0, "random_baseline": "other words (was: from all words)", "redrawn": 53}
    att = [r for r in iter_records(SFT_ONE_WORD) if r["style"] == "attribution" and r["random_input"]]
    assert len(att) == 532
    assert not any(hits_explanation(r) for r in att)


def _data(tmp_path):
    path = tmp_path / "s140.csv"
    path.write_text("".join(f'"{p}","1","d","q","u","{t}"\n' for p, t in TWEETS))
    return dict(task="sentiment140", data=str(path), limit=len(TWEETS), split="all", erasure=True)


def _old_run(tmp_path, backend, monkeypatch):
    """A run made under the former rule: baselines drawn from all the input's words."""
    with monkeypatch.context() as m:
        m.setattr(S, "other_positions", lambda text, checked: list(range(len(W.word_keys(text)))))
        m.setattr("selfexplain.pipeline.evaluate.RANDOM_BASELINE", True)
        return evaluate(output_path=tmp_path / "old", backend_instance=backend, **_data(tmp_path))


def test_a_rejudged_run_is_a_fresh_run_where_the_baseline_hit_and_the_old_one_elsewhere(tmp_path, keyword_backend,
                                                                                        monkeypatch):
    old = _old_run(tmp_path, keyword_backend, monkeypatch)
    key = lambda r: (r["sample_id"], r["style"])  # noqa: E731
    before = {key(r): r for r in old.records}
    hit = {k for k, r in before.items() if r["random_input"] and hits_explanation(r)}
    assert hit and len(hit) < sum(r["random_input"] is not None for r in old.records)
    scored = len(keyword_backend.scored)
    done = rejudge_run(old.run_dir, lambda config: keyword_backend)
    fresh = evaluate(output_path=tmp_path / "fresh", backend_instance=keyword_backend, **_data(tmp_path))
    # the folder a fresh run of the same command uses, and (one input alone) a record without a baseline now
    assert done.run_dir.name == fresh.run_dir.name and not old.run_dir.exists()
    assert (done.redrawn, done.no_random) == (len(hit), 1)
    now = {key(r): r for r in iter_records(done.run_dir)}
    new = {key(r): r for r in fresh.records}
    for k, r in now.items():
        assert r["random_input"] is None or not hits_explanation(r)
        if k in hit:  # drawn again: what the fresh run drew, classified and ranked as it did
            for field in ("random_input", "random_prediction", "random_faithful", "no_random",
                          "random_erasure_rank", "random_names_w_star"):
                assert r[field] == new[k][field], (k, field)
        else:
            assert {f: v for f, v in r.items() if f in before[k]} == before[k]
    alone = now[next(k for k, r in now.items() if r["input"] == "hate" and r["style"] == "attribution")]
    assert alone["no_random"] == "too few other words" and alone["random_input"] is None
    config = json.loads((done.run_dir / "config.json").read_text())
    assert config["random_baseline"] == "other words"
    assert config["runtime"]["rejudged"]["redrawn"] == len(hit)
    summary = json.loads((done.run_dir / "summary.json").read_text())
    att = next(s for s in summary["styles"] if s["style"] == "attribution")
    assert att["n_no_random"] == 1
    assert (done.run_dir / "summary.md").read_text().startswith("# selfexplain evaluate\n\nmodel `embedded`")
    # only the redrawn baselines were classified (plus the erasure attribution of their inputs)
    assert len(keyword_backend.scored) > scored
    again = rejudge_run(done.run_dir, lambda config: pytest.fail("nothing to classify"))
    assert again.current and again.run_dir == done.run_dir


def test_an_unchanged_baseline_is_drawn_again_in_a_run_of_todays_rule(tmp_path, keyword_backend):
    """Counterfactual baselines took their new words from an alignment that is not minimal on repeated words, so a
    baseline could leave the input unchanged (2 of the 40 valid one-word counterfactuals of cpu-medium's retrained
    w/ counterfactual): no baseline, counted as one that does not flip.  Re-judging draws it again, even in a run
    of today's rule, and keeps the folder."""
    fresh = evaluate(output_path=tmp_path / "fresh", backend_instance=keyword_backend, **_data(tmp_path))
    run = tmp_path / "run" / fresh.run_dir.name
    shutil.copytree(fresh.run_dir, run)
    records = list(iter_records(run))
    broken = next(r for r in records if r["random_input"] is not None)
    drawn = dict(broken)
    broken.update(random_input=broken["input"], random_prediction=broken["prediction"], random_faithful=False)
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert unchanged_baseline(broken)
    done = rejudge_run(run, lambda config: keyword_backend)
    assert done.run_dir == run and done.redrawn == 1
    now = {(r["sample_id"], r["style"]): r for r in iter_records(run)}
    for field in ("random_input", "random_prediction", "random_faithful"):
        assert now[broken["sample_id"], broken["style"]][field] == drawn[field]
    assert json.loads((run / "config.json").read_text())["runtime"]["unchanged_baselines_redrawn"]["redrawn"] == 1
    assert rejudge_run(run, lambda config: pytest.fail("nothing to classify")).current


def test_a_study_is_rejudged_cell_by_cell_and_a_missing_adapter_leaves_its_cell(tmp_path, keyword_backend,
                                                                               monkeypatch):
    old = _old_run(tmp_path, keyword_backend, monkeypatch)
    root = tmp_path / "study"
    (root / "runs").mkdir(parents=True)
    base = root / "runs" / old.run_dir.name
    shutil.move(str(old.run_dir), base)
    trained = root / "runs" / "evaluate-sentiment140-keyword-000000000000"
    shutil.copytree(base, trained)
    seeded = root / "runs" / "evaluate-sentiment140-keyword-111111111111"
    shutil.copytree(base, seeded)
    study = {"format": 2, "experiment": {"name": "t"},
             "stages": {"train|attribution@sentiment140": {"run_dir": "runs/train-x", "adapter": "runs/train-x/adapter"},
                        "train|attribution@sentiment140#seed1": {"run_dir": "runs/train-y",
                                                                 "adapter": "runs/train-y/adapter"},
                        "evaluate|none|sentiment140|one": {"run_dir": f"runs/{base.name}", "seconds": 1.0}},
             "cells": [{"condition": "none", "train_task": None, "eval_task": "sentiment140", "width": "one",
                        "run_dir": f"runs/{base.name}"},
                       {"condition": "attribution", "train_task": "sentiment140", "eval_task": "sentiment140",
                        "width": "one", "run_dir": f"runs/{trained.name}"},
                       {"condition": "attribution", "train_task": "sentiment140", "eval_task": "sentiment140",
                        "width": "one", "run_dir": f"runs/{seeded.name}", "seed": 1}]}
    (root / "study.json").write_text(json.dumps(study, indent=2) + "\n")

    def load(config, adapter):
        if adapter and not Path(adapter).is_dir():
            raise MissingModel(f"its adapter {adapter} is gone")
        return keyword_backend

    (none, res_none), (att, res_att), (seed, res_seed) = rejudge_study(root, load)
    assert isinstance(res_none, Rejudged) and not res_none.current
    assert isinstance(res_att, MissingModel) and "train-x/adapter is gone" in str(res_att)
    # A further training seed's cell needs its own model's adapter, not the study's own model's.
    assert seed == "attribution@sentiment140#seed1 on sentiment140 (one)"
    assert isinstance(res_seed, MissingModel) and "train-y/adapter is gone" in str(res_seed)
    assert trained.exists()  # left as it was
    written = json.loads((root / "study.json").read_text())
    name = res_none.run_dir.name
    assert written["cells"][0]["run_dir"] == f"runs/{name}" and written["cells"][1]["run_dir"] == f"runs/{trained.name}"
    assert written["stages"]["evaluate|none|sentiment140|one"]["run_dir"] == f"runs/{name}"


def test_a_run_of_a_trained_model_needs_its_adapter(tmp_path, keyword_backend, monkeypatch):
    old = _old_run(tmp_path, keyword_backend, monkeypatch)
    config = json.loads((old.run_dir / "config.json").read_text())
    config["model"] = {"kind": "embedded", "name": "qwen2.5-coder-0.5b", "adapter": "ab" * 32}
    (old.run_dir / "config.json").write_text(json.dumps(config))
    [(path, key, res)] = api.rejudge([old.run_dir])
    assert isinstance(res, MissingModel) and "--adapter" in str(res) and old.run_dir.exists()


def test_the_command_names_a_folder_that_is_no_run_in_one_line(tmp_path):
    from typer.testing import CliRunner

    from selfexplain.cli import app

    res = CliRunner().invoke(app, ["rejudge", str(tmp_path)])
    assert res.exit_code != 0 and "Traceback" not in res.output
    assert f"{tmp_path}: no config.json (not a run folder)" in res.output
