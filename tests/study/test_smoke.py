"""Smoke studies of the shipped presets, and the report of a real (tiny) study."""

import json
from pathlib import Path

import pytest
import yaml

from locations import FIXTURES
from selfexplain.experiments import load_experiment, read_study, reproduce
from selfexplain.reports import write_study_report


@pytest.mark.embedded
@pytest.mark.slow
def test_tiny_study_produces_every_table_and_figure(tmp_path):
    """construct -> train -> evaluate from an experiment file, tiny sizes, then the full report.  On the tiny
    stand-in: nothing here asserts what a model says (SmolLM2 took five times as long for the same checks)."""
    f = tmp_path / "exp.yaml"
    f.write_text(yaml.safe_dump({
        "name": "tiny", "model": "standin:tulu-tiny", "chunk_size": 4, "styles": ["attribution"],
        "train_tasks": ["sentiment140"], "conditions": ["none", "predictions", "attribution"],
        "construction": {"limit": 6, "quality": 2, "data": str(FIXTURES / "sentiment140.csv")},
        # Two steps: the first is the warm-up's, at learning rate 0, and would leave every adapter at its
        # (seeded, so identical) initialisation.
        "train": {"mix": 0.5, "settings": {"max_steps": 2, "batch_size": 4, "lora": {"r": 4}}},
        # Multi-word answers run to long budgets on this model: fewer samples there.
        "evaluate": [{"task": "sentiment140", "widths": ["one"], "limit": 4, "split": "all",
                      "data": str(FIXTURES / "sentiment140.csv")},
                     {"task": "sentiment140", "widths": ["multi"], "limit": 2, "split": "all",
                      "data": str(FIXTURES / "sentiment140.csv")}],
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
