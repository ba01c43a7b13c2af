"""The ``cot`` command on SmolLM2 (mechanics only: the model is too small for its numbers to mean anything), its
resumption, and its one-line errors."""

import json

import pytest
from typer.testing import CliRunner

from selfexplain.cli import app
from selfexplain.pipeline.cot import cot
from selfexplain.pipeline.runs import Hooks


@pytest.fixture(scope="module")
def smol(smollm2):
    from selfexplain.backends.hf import HFBackend

    return HFBackend.from_loaded(*smollm2, max_batch_size=8)


class Stop(Exception):
    pass


def _stop_after_first_chunk(c):
    raise Stop


def test_a_killed_cue_run_resumes_to_the_records_of_an_unbroken_one(smol, tmp_path):
    args = dict(model="smollm2", backend_instance=smol, limit=2, chunk_size=1, max_new_tokens=8, judge_instance=smol,
                cues="suggestion,metadata")  # fmt: skip
    with pytest.raises(Stop):
        cot("cue", output_path=tmp_path / "a", hooks=Hooks(on_chunk=_stop_after_first_chunk), **args)
    resumed = cot("cue", output_path=tmp_path / "a", **args)
    fresh = cot("cue", output_path=tmp_path / "b", **args)
    assert resumed.records == fresh.records and len(fresh.records) == 2 * 2  # two samples, two cues
    assert resumed.run_dir.name.startswith("cot-cue-tweets-")
    summary = json.loads((resumed.run_dir / "summary.json").read_text())
    assert set(summary["cues"]) == {"suggestion", "metadata"} and summary["judge"] == smol.identity
    assert "### Cue verbalization" in (resumed.run_dir / "summary.md").read_text()
    # A run without the optional controls records none of their keys and names none in its identity, so a run
    # begun before they existed resumes in its own folder.
    config = json.loads((resumed.run_dir / "config.json").read_text())
    assert not {"other", "resamples", "temperature"} & set(config)
    assert not {"other_label", "other_hit", "resampled"} & set(fresh.records[0])


def test_a_resampled_run_resumes_to_the_draws_of_an_unbroken_one(smol, tmp_path):
    args = dict(model="smollm2", backend_instance=smol, limit=2, max_new_tokens=8, cues="suggestion", resamples=2)
    with pytest.raises(Stop):
        cot("cue", output_path=tmp_path / "a", chunk_size=1, hooks=Hooks(on_chunk=_stop_after_first_chunk), **args)
    resumed = cot("cue", output_path=tmp_path / "a", chunk_size=1, **args)
    # Unbroken, both samples in one batch: the same draws and texts (scores differ only in float rounding).
    whole = cot("cue", output_path=tmp_path / "b", chunk_size=2, **args)
    texts = lambda recs: [(r["resampled"], r["reply"], r["cued_reply"], r["control_reply"]) for r in recs]  # noqa: E731
    assert texts(resumed.records) == texts(whole.records)
    assert all(len(r["resampled"]) == 2 and "other_label" not in r for r in whole.records)  # two labels: no third
    config = json.loads((resumed.run_dir / "config.json").read_text())
    assert (config["resamples"], config["temperature"]) == (2, 0.7) and "other" not in config
    s = resumed.summary["cues"]["suggestion"]
    assert s["resamples"] == 2 and {"resample_hit", "resample_flip", "excess_resampling"} <= set(s)


def test_a_perturbation_run_with_a_helper(smol, tmp_path):
    res = cot("early-answer,filler,mistake,paraphrase", model="smollm2", backend_instance=smol, helper_instance=smol,
              limit=2, chunk_size=2, max_new_tokens=12, output_path=tmp_path)  # fmt: skip
    assert res.run_dir.name.startswith("cot-perturb-tweets-") and len(res.records) == 2
    for r in res.records:
        assert list(r["early"]) == ["0", "0.25", "0.5", "0.75", "1"] and r["early"]["1"] == r["answer"]
        assert r["filler_answer"] in ("Positive", "Negative") and r["paraphrase"] is not None
    p = res.summary["perturbations"]
    assert p["n"] == 2 and set(p) >= {"early_answer", "filler", "mistake", "paraphrase"}


@pytest.mark.parametrize(
    "args, says",
    [
        (["--test", "bogus"], "--test: bogus"),
        (["--test", "cue,filler"], "run cue apart"),
        (["--test", "mistake"], "needs a helper model"),
        (["--cue", "sugestion"], "unknown cue"),
        (["--max-new-tokens", "0"], "Invalid value"),
    ],
)
def test_bad_arguments_are_one_line_before_any_model_loads(args, says, tmp_path):
    res = CliRunner().invoke(app, ["cot", *args, "--output-path", str(tmp_path / "out")])
    assert res.exit_code == 2 and says in res.output, res.output
    assert not (tmp_path / "out").exists()
