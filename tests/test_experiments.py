"""Experiment files and the reproduce grid: validation, caching, and the report of a real (tiny) study."""

import json
from pathlib import Path

import pytest
import yaml

from selfexplain.backends import BACKENDS, register_backend
from selfexplain.errors import UserError
from selfexplain.experiments import load_experiment, preset_names, read_study, reproduce
from selfexplain.reports import write_study_report

FIX = Path(__file__).parent / "fixtures"


def test_presets_load_and_name_the_papers_setting():
    assert {"cpu-small", "paper", "paper-13b"} <= set(preset_names())
    small, paper, big = (load_experiment(n) for n in ("cpu-small", "paper", "paper-13b"))
    assert small.model == "embedded" and small.train_tasks == ["tweets"]
    assert {e.task for e in small.evaluate} == {"tweets", "vitaminc"}  # vitaminc: evaluation only
    assert paper.model == "allenai/tulu-2-7b" and big.model == "allenai/tulu-2-13b"
    assert paper.train_tasks == ["sentiment140", "snli", "agnews"]
    assert paper.construction.per_style == 50000 and paper.train.mix == 0.2 and paper.evaluate[0].limit == 5000
    assert paper.train.replay == "hub:allenai/tulu-v2-sft-mixture"


@pytest.mark.parametrize("patch,message", [
    ({"colour": "blue"}, "field 'colour'"),
    ({"evaluate": [{"task": "tweets", "widths": ["two"]}]}, "field 'evaluate.0.widths'"),
    ({"conditions": ["none", "magic"]}, "field 'conditions'"),
    ({"construction": {"limit": 0}}, "field 'construction.limit'"),
    ({"variants": {"more": {"data": "magic"}}, "conditions": ["more"]}, "field 'variants.more.data': 'magic'"),
    ({"variants": {"redaction": {"data": "attribution"}}}, "'redaction' is one of the paper's conditions"),
    ({"variants": {"../x": {"data": "attribution"}}}, "field 'variants': the name '../x'"),
    ({"conditions": ["none", "more"]}, r"unknown condition\(s\) \['more'\]"),
    ({"evaluate": [{"task": "tweets", "erasure": "sometimes"}]}, "field 'evaluate.0.erasure'"),
    ({"variants": {"x": {"data": "attribution", "method": "ppo"}}}, "field 'variants.x.method': 'ppo'"),
    ({"variants": {"x": {"data": "predictions", "method": "grpo"}}}, "grpo trains one style on the check"),
    ({"variants": {"x": {"data": "attribution", "limit": 5}}}, "rl and limit are for grpo and dpo"),
])
def test_bad_experiment_files_name_the_file_and_field(tmp_path, patch, message):
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump({"name": "x", "evaluate": [{"task": "tweets"}], **patch}))
    with pytest.raises(UserError, match=message) as e:
        load_experiment(str(f))
    assert str(f) in str(e.value)


def test_unknown_preset_lists_the_presets():
    with pytest.raises(UserError, match="cpu-small"):
        load_experiment("nope")


@pytest.fixture
def keyword_study(tmp_path, keyword_backend):
    register_backend("keyword")(lambda model, **kw: keyword_backend)
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump({
        "name": "kw", "model": "keyword-model", "backend": "keyword", "conditions": ["none"], "chunk_size": 4,
        "evaluate": [{"task": "sentiment140", "widths": ["one", "multi"], "limit": 8, "split": "all",
                      "data": str(FIX / "sentiment140.csv")}],
    }))
    yield load_experiment(str(f)), tmp_path / "studies"
    BACKENDS.remove("keyword")  # a test's backend does not outlive it (help texts list the registry)


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


def _tables(root: Path) -> dict[str, str]:
    write_study_report(root)
    return {p.name: p.read_text() for p in sorted((root / "report").glob("*.csv"))}


def test_a_copied_study_reports_the_same_tables_after_the_original_is_gone(keyword_study, tmp_path):
    """study.json stored run folders as written: a copy read the original's records, or none once it was gone."""
    import shutil

    exp, out = keyword_study
    root = reproduce(exp, out.resolve(), log=lambda m: None)
    before = _tables(root)
    assert "sentiment140" in before["table10_valid_counts.csv"]
    assert str(tmp_path) not in (root / "study.json").read_text()  # every path relative to the study
    copy = tmp_path / "elsewhere" / "kw"
    shutil.copytree(root, copy)
    shutil.rmtree(root)
    assert _tables(copy) == before


def test_a_study_json_of_version_0_1_reads_its_own_runs(keyword_study, tmp_path):
    """Absolute paths from before the format change: a copy reads its own runs/, not the original's."""
    import shutil

    exp, out = keyword_study
    root = reproduce(exp, out.resolve(), log=lambda m: None)
    before = _tables(root)
    study = json.loads((root / "study.json").read_text())
    study.pop("format")
    for c in study["cells"]:
        c["run_dir"] = str(root / c["run_dir"])  # as version 0.1 wrote them
    (root / "study.json").write_text(json.dumps(study))
    copy = tmp_path / "elsewhere" / "kw"
    shutil.copytree(root, copy)
    for records in root.glob("runs/*/records.jsonl"):  # the original changes after the copy was taken
        records.write_text("")
    assert _tables(copy) == before
    reproduce(exp, copy.parent, log=lambda m: None)  # rewritten in the new format, nothing recomputed
    assert json.loads((copy / "study.json").read_text())["format"] == 2 and _tables(copy) == before


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


@pytest.mark.embedded
@pytest.mark.slow
def test_tiny_study_produces_every_table_and_figure(tmp_path):
    """construct -> train -> evaluate from an experiment file, tiny sizes, then the full report.  On the tiny
    stand-in: nothing here asserts what a model says (SmolLM2 took five times as long for the same checks)."""
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump({
        "name": "tiny", "model": "standin:tulu-tiny", "chunk_size": 4, "styles": ["attribution"],
        "train_tasks": ["sentiment140"], "conditions": ["none", "predictions", "attribution"],
        "construction": {"limit": 6, "quality": 2, "data": str(FIX / "sentiment140.csv")},
        # Two steps: the first is the warm-up's, at learning rate 0, and would leave every adapter at its
        # (seeded, so identical) initialisation.
        "train": {"mix": 0.5, "settings": {"max_steps": 2, "batch_size": 4, "lora": {"r": 4}}},
        # Multi-word answers run to long budgets on this model: fewer samples there.
        "evaluate": [{"task": "sentiment140", "widths": ["one"], "limit": 4, "split": "all",
                      "data": str(FIX / "sentiment140.csv")},
                     {"task": "sentiment140", "widths": ["multi"], "limit": 2, "split": "all",
                      "data": str(FIX / "sentiment140.csv")}],
    }))
    root = reproduce(load_experiment(str(f)), tmp_path / "studies", log=lambda m: None)
    study = read_study(root)
    assert len(study["cells"]) == 3 * 2
    assert {k.split("|")[0] for k in study["stages"]} == {"construct", "train", "evaluate"}
    adapters = {c["run_dir"]: json.loads((Path(c["run_dir"]) / "config.json").read_text())["model"].get("adapter")
                for c in study["cells"]}
    assert len(set(adapters.values())) == 3  # none, predictions, attribution: three different models
    files = write_study_report(root)
    # The paper's tables, the cells and the reading, and which measure to trust (the construction kept erasures).
    assert len(files["csv"]) == 9 and len(files["figures"]) == 3
    assert "diagnosticity.csv" in {p.name for p in files["csv"]}
    t3 = (root / "report" / "table3_constructed_vs_original.csv").read_text().splitlines()
    assert len(t3) == 1 + 3  # the quality check covers all three constructed styles
    t4 = (root / "report" / "table4_faithfulness.csv").read_text().splitlines()
    assert len(t4) == 1 + 3  # attribution: none, w/ predictions, w/ attribution


@pytest.mark.slow
def test_a_clone_without_adapters_retrains_only_what_a_cell_still_needs(tmp_path, monkeypatch, cpu_small_smoke):
    """Adapter weights are never committed, so a fresh clone of a study has none: reproduce trained every
    condition again (about 25 min each for cpu-medium) only to find its cells complete.  Now a model whose cells
    are complete is not retrained, unless what they rest on changed or a cell is missing."""
    import shutil

    from selfexplain import api
    from selfexplain.experiments import smoke

    exp = smoke(load_experiment("cpu-small"))
    root = tmp_path / cpu_small_smoke.name
    shutil.copytree(cpu_small_smoke, root)  # the study as `reproduce --preset cpu-small --smoke` left it
    records = {p.relative_to(root): p.read_bytes() for p in root.rglob("records.jsonl")}
    cells = read_study(root)["cells"]
    for adapter in root.glob("runs/train-*/adapter"):
        shutil.rmtree(adapter)

    class Trains(Exception):
        pass

    def trains(*a, **k):
        raise Trains

    monkeypatch.setattr(api, "train", trains)
    log = []
    reproduce(exp, tmp_path, log=log.append)
    assert sum("adapter is not needed and not retrained" in m for m in log) == len(exp.conditions) - 1
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("records.jsonl")} == records
    assert read_study(root)["cells"] == cells
    # Another learning rate makes another model: its cells would be new runs, so it trains.
    changed = exp.model_copy(deep=True, update={"train": exp.train.model_copy(update={
        "settings": {**exp.train.settings, "learning_rate": 3e-4}})})
    with pytest.raises(Trains):
        reproduce(changed, tmp_path, log=lambda m: None)
    # A cell left incomplete needs its model.
    cell = next(c for c in read_study(root)["cells"] if c["condition"] == "attribution")
    (Path(cell["run_dir"]) / "summary.json").unlink()
    with pytest.raises(Trains):
        reproduce(exp, tmp_path, log=lambda m: None)
    # --conditions: only the named conditions are computed; the others stay as recorded, incomplete or not.
    log = []
    reproduce(exp, tmp_path, log=log.append, only=["redaction"])
    assert not any(m.startswith(("evaluate|none", "train|attribution")) for m in log)
    assert any(m.startswith("train|redaction") for m in log)
    with pytest.raises(Trains):
        reproduce(exp, tmp_path, log=lambda m: None, only=["attribution"])
    with pytest.raises(UserError, match="--conditions: attributoin not among its conditions"):
        reproduce(exp, tmp_path, log=lambda m: None, only=["attributoin"])


def test_a_retrained_model_loses_the_cells_of_its_earlier_adapter(tmp_path, monkeypatch, cpu_small_smoke):
    """A condition retrained with other settings whose evaluation then failed (its data set could not be fetched)
    kept the cells its earlier adapter had scored, and the report showed them under the new model's name.  Now
    the retraining drops them, and a report refuses a model whose cells name different adapters."""
    import shutil

    from selfexplain import api
    from selfexplain.experiments import smoke
    from selfexplain.reports.study import load_study

    exp = smoke(load_experiment("cpu-small"))
    root = tmp_path / cpu_small_smoke.name
    shutil.copytree(cpu_small_smoke, root)
    before = read_study(root)["cells"]
    changed = exp.model_copy(deep=True, update={"train": exp.train.model_copy(update={
        "settings": {**exp.train.settings, "learning_rate": 3e-4}})})

    def unreachable(**kwargs):
        raise UserError("bigbench-1.0.0.tar.gz not found")

    monkeypatch.setattr(api, "evaluate", unreachable)
    with pytest.raises(UserError, match="not found"):
        reproduce(changed, tmp_path, log=lambda m: None, only=["attribution"])
    after = read_study(root)["cells"]
    assert not [c for c in after if c["condition"] == "attribution"]
    assert after == [c for c in before if c["condition"] != "attribution"]
    assert not [k for k in read_study(root)["stages"] if k.startswith("evaluate|attribution@")]
    load_study(root)  # consistent again

    # A study left as the old code left it: one cell from the earlier adapter.
    broken = tmp_path / "broken"
    shutil.copytree(cpu_small_smoke, broken)
    cell = next(c for c in read_study(broken)["cells"] if c["condition"] == "redaction")
    config = Path(cell["run_dir"]) / "config.json"
    data = json.loads(config.read_text())
    data["model"]["adapter"] = "0" * 64
    config.write_text(json.dumps(data))
    with pytest.raises(UserError, match="redaction@tweets's cells were evaluated with different adapters"):
        load_study(broken)


@pytest.mark.embedded
@pytest.mark.slow
def test_paper_presets_smoke_every_stage(tmp_path):
    """`reproduce --preset paper --smoke` (and paper-13b): every stage of the paper's grid, offline, on a
    tiny Llama with Tulu-2's template and BOS, with the bundled toy data; then the report."""
    from llama_standin import make_tiny_llama
    from selfexplain.experiments import smoke

    model = str(make_tiny_llama(tmp_path / "tiny-llama"))
    runs = tmp_path / "runs"  # shared: paper-13b's smoke grid is paper's, so its stages are found done
    for name in ("paper", "paper-13b"):
        exp = smoke(load_experiment(name), model)
        root = reproduce(exp, tmp_path / "studies", log=lambda m: None, runs_path=runs)
        study = read_study(root)
        full = load_experiment(name)
        n_models = 1 + len(full.train_tasks) * (len(full.conditions) - 1)
        n_evals = sum(len(e.widths) for e in full.evaluate)
        assert len(study["cells"]) == n_models * n_evals
        assert {k.split("|")[0] for k in study["stages"]} == {"construct", "train", "evaluate"}
        files = write_study_report(root)
        assert len(files["csv"]) == 9 and "diagnosticity.csv" in {p.name for p in files["csv"]}
        t4 = (root / "report" / "table4_faithfulness.csv").read_text().splitlines()
        assert len(t4) > 1
    # Every training file of a task holds the same number of explanations.
    for task in full.train_tasks:
        stage = study["stages"][f"construct|{task}"]
        assert len(set(stage["kept"].values())) >= 1 and stage["train_size"] >= 1


@pytest.mark.slow
def test_cpu_medium_smoke_trains_its_variant_and_scores_erasure_only_where_asked(tmp_path):
    """The powered preset's grid at toy size: the variant beyond the paper trains on the attribution data with
    its own settings, and erasure agreement runs on the one-word tweets cells only."""
    from selfexplain.experiments import smoke

    full = load_experiment("cpu-medium")
    assert full.evaluate[0].limit >= 300 and full.construction.per_style >= 400  # the floor
    small = smoke(full)
    lines: list[str] = []
    root = reproduce(small, tmp_path / "studies", log=lines.append)
    study = read_study(root)
    # Every condition's cells, and those of the one further training seed the smoke keeps (w/ predictions, 1).
    assert small.train.seeds == {"predictions": [1]}
    assert len(study["cells"]) == (len(small.conditions) + 1) * 3
    assert sum(c.get("seed") == 1 for c in study["cells"]) == 3
    # On hf each trained model is evaluated as soon as it is trained: a study cut short holds whole conditions.
    first = {key: next(i for i, m in enumerate(lines) if m.startswith(key)) for key in
             ("train|attribution@tweets", "evaluate|attribution@tweets|", "train|redaction@tweets")}
    assert list(first.values()) == sorted(first.values()), lines
    config = {k: json.loads((Path(v["run_dir"]) / "config.json").read_text()) for k, v in study["stages"].items()}
    longer, paper = config["train|attribution-3-epochs@tweets"], config["train|attribution@tweets"]
    assert longer["data"] == paper["data"] and longer["baseline"] is None
    assert (longer["settings"]["epochs"], paper["settings"]["epochs"]) == (3, 1)
    assert study["stages"]["train|attribution-3-epochs@tweets"]["run_dir"] != study["stages"]["train|attribution@tweets"]["run_dir"]
    adapters = {json.loads((Path(c["run_dir"]) / "config.json").read_text())["model"].get("adapter")
                for c in study["cells"]}
    # At toy size max_steps 2 overrides the epochs, so the variant's weights (and adapter hash) are attribution's.
    assert None in adapters and len(adapters) >= 5
    for c in study["cells"]:
        erasure = config[f"evaluate|{c['condition'] if c['condition'] == 'none' else c['condition'] + '@tweets'}"
                         f"|{c['eval_task']}|{c['width']}"].get("erasure", False)
        assert erasure == (c["eval_task"] == "tweets" and c["width"] == "one"), c
    # The routes beyond the paper: GRPO's train stage; the coupled variant's construction by its source model
    # (the stand-in here), and its cells judged against that model. DPO is left out at toy size and says so.
    assert "dpo-attribution" not in small.conditions and "DPO variants left out" in small.description
    assert {"construct|tweets|standin:tulu-tiny", "train|grpo-attribution@tweets"} <= set(study["stages"])
    grpo = config["train|grpo-attribution@tweets"]
    assert grpo["method"] == "grpo" and grpo["rl"]["num_generations"] == 2 and grpo["rl"]["beta"] == 0.04
    for c in study["cells"]:
        records = (Path(c["run_dir"]) / "records.jsonl").read_text()
        assert ('"reference": {"model"' in records) == (c["condition"] == "coupled-smollm2"), c
    write_study_report(root)
    assert (root / "report" / "coupling.csv").is_file()  # faithful to itself vs to the stand-in that built its data
    t4 = (root / "report" / "table4_faithfulness.csv").read_text().splitlines()
    assert sum("attribution-3-epochs" in row for row in t4) == 1  # beside w/ attribution, on its own data
    assert ("Beyond the paper: 'w/ attribution-3-epochs' trains on the attribution data with epochs 3 (beyond "
            "the paper: under-training or no effect?)") in (root / "report" / "report.md").read_text()


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


# ---- property-based: any mapping in an experiment file is an experiment or one error line ---------------------

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from strategies import VALUES as _values, loads_or_one_line  # noqa: E402

_eval = st.fixed_dictionaries({}, optional={"task": st.sampled_from(["tweets", "snli", "nope"]) | _values,
                                            "widths": st.lists(st.sampled_from(["one", "multi", "two"])) | _values,
                                            "limit": _values, "split": _values, "data": _values})
_experiment_like = st.fixed_dictionaries({}, optional={
    "name": st.sampled_from(["ok", "../../x", "/abs", ""]) | _values,
    "evaluate": st.lists(_eval, max_size=2) | _values,
    "chunk_size": _values, "max_new_tokens": _values, "conditions": _values, "styles": _values,
    "train_tasks": st.lists(st.sampled_from(["tweets", "vitaminc", "x"])) | _values,
    "construction": st.fixed_dictionaries({}, optional={"limit": _values, "quality": _values, "per_style": _values})
    | _values,
    "train": st.fixed_dictionaries({}, optional={"mix": _values, "settings": _values, "replay": _values}) | _values,
    "variants": st.dictionaries(st.sampled_from(["v", "../x", "attribution", ""]) | st.text(max_size=4),
                                st.fixed_dictionaries({}, optional={
                                    "data": st.sampled_from(["attribution", "predictions", "nope"]) | _values,
                                    "method": st.sampled_from(["sft", "grpo", "dpo", "ppo"]) | _values,
                                    "source_model": _values, "limit": _values, "rl": _values, "settings": _values,
                                    "note": _values}) | _values, max_size=2) | _values,
    "model_args": _values, "seed": _values,
}) | st.dictionaries(st.text(max_size=8), _values, max_size=5)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mapping=_experiment_like)
def test_any_mapping_in_an_experiment_file_is_an_experiment_or_one_error_line(tmp_path, mapping):
    from selfexplain.experiments import Experiment

    loads_or_one_line(lambda path: load_experiment(str(path)), tmp_path / "exp.yaml", mapping, Experiment)


def test_the_reading_section_declares_estimands_the_reports_know():
    from typing import get_args

    from selfexplain import estimands as E
    from selfexplain.experiments import ReadingCfg

    assert get_args(ReadingCfg.model_fields["primary"].annotation) == E.ESTIMANDS
    assert get_args(ReadingCfg.model_fields["family"].annotation) == E.FAMILIES
    assert load_experiment("cpu-medium").reading.primary in E.ESTIMANDS


def test_an_experiment_file_of_version_0_2_with_batch_size_still_reads(tmp_path):
    """The experiment's batch_size was the chunk of every evaluation; it is chunk_size now, and batch_size names
    the training batch only (train.settings)."""
    f = tmp_path / "old.yaml"
    cell = [{"task": "tweets", "widths": ["one"], "limit": 4}]
    f.write_text(yaml.safe_dump({"name": "old", "batch_size": 4, "evaluate": cell}))
    with pytest.warns(FutureWarning, match="'batch_size' is now 'chunk_size'"):
        assert load_experiment(str(f)).chunk_size == 4
    f.write_text(yaml.safe_dump({"name": "old", "batch_size": 4, "chunk_size": 8, "evaluate": cell}))
    with pytest.raises(UserError, match="give chunk_size only"):
        load_experiment(str(f))


def test_the_api_reads_the_former_batch_size_as_the_chunk_size(tmp_path):
    from selfexplain import api

    for fn in (api.evaluate, api.attribute, api.construct):
        with pytest.warns(DeprecationWarning, match="call it chunk_size"):
            with pytest.raises(UserError, match="--chunk-size must be a positive whole number, not 0"):
                fn(batch_size=0, output_path=tmp_path / "runs")
