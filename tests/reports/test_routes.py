"""Training routes side by side: each trained model's method, data, compute and effect, from the records."""

import json
from pathlib import Path

import numpy as np
import pytest
from study_factory import add_variant, make_study

from selfexplain.reports import all_tables
from selfexplain.reports.routes import routes_table
from selfexplain.reports.study import load_study
from selfexplain.reports.tables import faithfulness_table
from selfexplain.stats import holm


def _study_with_grpo(tmp_path: Path, faithful) -> Path:
    """A study whose 'grpo' condition has w/ attribution's records with ``faithful(r)`` as each valid verdict."""
    root = make_study(tmp_path / "s", n=60)

    def rejudged(r):
        if r["valid"] and r["style"] == "attribution":
            r["faithful"] = faithful(r)

    study = add_variant(root, "grpo", {"data": "attribution", "method": "grpo", "limit": 30, "note": ""}, rejudged,
                        seconds=2.5)
    study["stages"]["train|attribution@tweets"] = {"steps": 60, "n_task": 400, "n_replay": 80, "seconds": 900.0}
    study["stages"]["train|grpo@tweets"] = {"method": "grpo", "steps": 15, "n_task": 30, "seconds": 1234.5}
    study["stages"]["train|redaction@tweets"] = {"skipped": "no pairs", "seconds": 0.0}
    (root / "study.json").write_text(json.dumps(study))
    return root


def test_one_row_per_trained_model_with_its_cost_and_effect(tmp_path):
    study = load_study(_study_with_grpo(tmp_path, lambda r: True))
    rows = {r["condition"]: r for r in routes_table(study).rows}
    assert list(rows) == ["w/ predictions", "w/ attribution", "w/ redaction", "w/ counterfactual", "w/ grpo"]
    grpo, sft = rows["w/ grpo"], rows["w/ attribution"]
    assert grpo["method"] == "grpo" and "rewarded by the check" in grpo["trained on"]
    assert grpo["training"] == "15 steps, 30 inputs" and grpo["training_seconds"] == 1234.5
    assert grpo["evaluation_seconds"] == 7.5  # its three cells
    assert sft["training"] == "60 steps, 400 examples + 80 replay" and sft["method"] == "sft"
    assert rows["w/ redaction"]["training"] == "skipped: no pairs"
    # Faithfulness in the trained style, recomputed from the records: every valid one is faithful.
    recs = study.cell("grpo", "tweets", "tweets", "one").style_records("attribution")
    valid = [r for r in recs.values() if r["valid"]]
    assert grpo["n_valid"] == len(valid) and grpo["faithfulness"] == 1.0 and grpo["style"] == "attribution, one-word"
    # The paper's conditions: the same change from no training as table 4, and no comparison with themselves.
    t4 = {(r["condition"], r["style"]): r for r in faithfulness_table(study, "one", "t4", "t4").rows}
    assert sft["diff"] == pytest.approx(t4["w/ attribution", "attribution"]["diff"])
    assert sft.get("sft_diff") is None and grpo["sft_diff"] > 0 and grpo["sft_diff_low"] > 0
    # w/ predictions trains on no style: accuracy only.
    preds = rows["w/ predictions"]
    assert preds.get("faithfulness") is None and preds["accuracy"] is not None
    # What training.prediction_chats trains on (the paper's table 4 caption), not the model's own predictions.
    assert preds["trained on"] == "ground-truth labels of its training inputs, no explanations"
    samples = study.cell("predictions", "tweets", "tweets", "one").samples()
    assert preds["accuracy"] == pytest.approx(np.mean([r["prediction"] == r["gold"] for r in samples.values()]))
    # Holm over the table's faithfulness changes: the four vs no training and grpo's vs the paper's SFT.
    table = routes_table(study)
    tests = [(r, k) for r in table.rows for k in ("p_value", "sft_p_value") if r.get(k) is not None]
    assert len(tests) == 5 and "adjusted over the 5 faithfulness changes" in table.note
    assert [r["holm_p" if k == "p_value" else "sft_holm_p"] for r, k in tests] == holm([r[k] for r, k in tests])
    assert all(r["holm_p"] >= r["p_value"] for r, k in tests if k == "p_value")


def test_same_records_as_the_paper_route_change_nothing(tmp_path):
    study = load_study(_study_with_grpo(tmp_path, lambda r: r["faithful"]))
    grpo = next(r for r in routes_table(study).rows if r["condition"] == "w/ grpo")
    assert grpo["sft_diff"] == 0 and grpo["sft_diff_method"] == "exact"


def test_only_studies_with_routes_beyond_the_paper_get_the_table(tmp_path):
    assert "routes" in [t.name for t in all_tables(load_study(_study_with_grpo(tmp_path / "a", lambda r: True)))]
    assert "routes" not in [t.name for t in all_tables(load_study(make_study(tmp_path / "plain", n=30)))]
