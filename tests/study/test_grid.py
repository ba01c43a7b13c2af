"""The reproduce grid: every cell, caching, training seeds, a route with nothing to train."""

import json
from pathlib import Path

import pytest

from selfexplain.errors import UserError
from selfexplain.experiments import load_experiment, read_study, reproduce
from selfexplain.reports import write_study_report


def test_reproduce_runs_every_cell_then_reruns_from_cache(keyword_study, keyword_backend):
    exp, out = keyword_study
    root = reproduce(exp, out, log=lambda m: None)
    study = read_study(root)
    assert {(c["condition"], c["width"]) for c in study["cells"]} == {("none", "one"), ("none", "multi")}
    for c in study["cells"]:
        recs = (Path(c["run_dir"]) / "records.jsonl").read_text().splitlines()
        assert len(recs) == 8 * 3
    calls = len(keyword_backend.generated)
    times = {k: v["seconds"] for k, v in study["stages"].items()}
    reproduce(exp, out, log=lambda m: None)
    assert len(keyword_backend.generated) == calls  # nothing recomputed
    assert {k: v["seconds"] for k, v in read_study(root)["stages"].items()} == times
    files = write_study_report(root)
    t4 = (root / "report" / "table4_faithfulness.csv").read_text()
    assert "table4_faithfulness.csv" in {p.name for p in files["csv"]} and t4.count("\n") == 1  # none: not a training task
    assert (root / "report" / "table10_valid_counts.csv").read_text().count("\n") == 1 + 2 * 3
    # A cell taken out of the experiment file leaves the study (its run folder stays on disk).
    # A stage's time is its run folder's compute time (summed over every process that worked on it).
    for c in read_study(root)["cells"]:
        (Path(c["run_dir"]) / "compute.json").write_text('{"seconds": 1234.5, "processes": 3}')
    reproduce(exp, out, log=lambda m: None)
    assert {v["seconds"] for v in read_study(root)["stages"].values()} == {1234.5}
    narrower = exp.model_copy(update={"evaluate": [exp.evaluate[0].model_copy(update={"widths": ["one"]})]})
    reproduce(narrower, out, log=lambda m: None)
    assert [c["width"] for c in read_study(root)["cells"]] == ["one"]
    assert len(keyword_backend.generated) == calls


def test_reproduce_refuses_training_on_an_evaluation_only_task(tmp_path):
    exp = load_experiment("cpu-small").model_copy(update={"train_tasks": ["vitaminc"]})
    with pytest.raises(UserError, match="evaluation-only"):
        reproduce(exp, tmp_path, log=lambda m: None)


@pytest.mark.slow
def test_further_training_seeds_train_and_evaluate_their_own_models(tmp_path, cpu_small_smoke):
    """train.seeds: each further seed trains one more model (its own training run, the seed in its settings),
    evaluated on every cell on the same samples, recorded as cells with a seed; the study's own cells stay."""
    import shutil

    from selfexplain.experiments import smoke
    from selfexplain.reports.seeds import seeds_table
    from selfexplain.reports.study import load_study

    exp = smoke(load_experiment("cpu-small"))
    root = tmp_path / cpu_small_smoke.name
    shutil.copytree(cpu_small_smoke, root)
    own = read_study(root)["cells"]
    seeded = exp.model_copy(deep=True, update={"train": exp.train.model_copy(update={"seeds": {"attribution": [0, 1]}})})
    log = []
    reproduce(seeded, tmp_path, log=log.append, only=["attribution"])
    study = read_study(root)
    assert [c for c in study["cells"] if c.get("seed") is None] == own
    extra = [c for c in study["cells"] if c.get("seed") is not None]
    assert {c["seed"] for c in extra} == {1}  # seed 0 is the study's own model
    assert len(extra) == sum(len(e.widths) for e in exp.evaluate)
    stage = study["stages"]["train|attribution@" + exp.train_tasks[0] + "#seed1"]
    config = json.loads((Path(stage["run_dir"]) / "config.json").read_text())
    assert json.dumps(config).count('"seed": 1') >= 1
    own_train = study["stages"]["train|attribution@" + exp.train_tasks[0]]["run_dir"]
    assert stage["run_dir"] != own_train
    for c in extra:  # the same samples as the study's own model of the cell
        mine = next(o for o in own if (o["condition"], o["eval_task"], o["width"]) ==
                    ("attribution", c["eval_task"], c["width"]))
        ids = lambda cell: {json.loads(x)["sample_id"] for x in (Path(cell["run_dir"]) / "records.jsonl").open()}  # noqa: E731
        assert ids(c) == ids(mine)
    assert seeds_table(load_study(root)).rows
    # A rerun finds everything cached; a seed list without seed 1 drops its cells from the study.
    records = {p: p.read_bytes() for p in root.rglob("records.jsonl")}
    reproduce(seeded, tmp_path, log=lambda m: None, only=["attribution"])
    assert read_study(root) == study and {p: p.read_bytes() for p in root.rglob("records.jsonl")} == records
    reproduce(exp, tmp_path, log=lambda m: None, only=["attribution"])
    assert [c for c in read_study(root)["cells"] if c.get("seed") is not None] == []


def test_a_route_with_nothing_to_train_is_skipped_and_the_report_says_so(tmp_path, monkeypatch):
    """DPO with no pair on this model stopped the whole study at its train stage; now the rest runs on."""
    from selfexplain.errors import NothingToTrain
    from selfexplain.experiments import Experiment, smoke

    def no_pairs(*args, **kwargs):
        raise NothingToTrain("runs/train-dpo-x: no input had both a valid faithful and a valid unfaithful explanation")

    monkeypatch.setattr("selfexplain.study.grid._train_rl", no_pairs)
    exp = smoke(Experiment.model_validate({
        "name": "skip", "train_tasks": ["tweets"], "styles": ["attribution"],
        "conditions": ["none", "attribution", "grpo-attribution"],
        "variants": {"grpo-attribution": {"data": "attribution", "method": "grpo"}},
        "evaluate": [{"task": "tweets", "widths": ["one"], "limit": 2}]}))
    root = reproduce(exp, tmp_path / "studies", log=lambda m: None)
    study = read_study(root)
    assert study["stages"]["train|grpo-attribution@tweets"]["skipped"].endswith("valid unfaithful explanation")
    assert {c["condition"] for c in study["cells"]} == {"none", "attribution"}
    write_study_report(root)
    assert "| train|grpo-attribution@tweets | 0.0 | **skipped**: runs/train-dpo-x: no input had both" in \
        (root / "report" / "report.md").read_text()
