"""The reading: each claim judged on a study's records with planted answers."""

import json
import shutil
from pathlib import Path

import pytest
from study_factory import add_variant, make_study

from selfexplain.reports.reading import reading_table
from selfexplain.reports.routes import routes_table
from selfexplain.reports.study import ONE_LABEL, ONE_LABEL_MARK, load_study
from selfexplain.reports.tables import cells_table, faithfulness_table
from selfexplain.reports.verdicts import ACCURACY_MARGIN, HOLDS, NOT_REPRODUCED, REPRODUCED, UNDETERMINED


def _copy_records(root: Path, source: str, target: str) -> None:
    """Make one cell's outcomes exactly another's (a model that learned nothing)."""
    for width_task in ("tweets-one", "tweets-multi", "vitaminc-one"):
        src = root / "runs" / f"evaluate-{source}-{width_task}" / "records.jsonl"
        shutil.copy(src, root / "runs" / f"evaluate-{target}-{width_task}" / "records.jsonl")


@pytest.fixture
def study(tmp_path):
    root = make_study(tmp_path / "s", n=300)  # enough that every planted rise survives Holm over the reading
    # Known answers: w/ predictions learned nothing (the untrained outcomes); a variant beyond the paper that
    # is exactly w/ attribution.
    _copy_records(root, "none", "predictions")
    study = json.loads((root / "study.json").read_text())
    study["experiment"]["conditions"].append("attribution-again")
    study["experiment"]["variants"] = {"attribution-again": {"data": "attribution", "settings": {"epochs": 3},
                                                             "note": ""}}
    for c in list(study["cells"]):
        if c["condition"] == "attribution":
            run = Path(c["run_dir"])
            copy = run.with_name(run.name.replace("attribution", "attribution-again"))
            shutil.copytree(run, copy)
            study["cells"].append({**c, "condition": "attribution-again", "run_dir": str(copy)})
    (root / "study.json").write_text(json.dumps(study))
    return load_study(root)


def _verdicts(table):
    return {r["claim"]: r["verdict"] for r in table.rows}


def test_reading_judges_each_claim_on_the_records(study):
    v = _verdicts(reading_table(study))
    # Trained cells were drawn at a 0.6 faithful rate, untrained at 0.2: a rise in every style, one- and multi-word.
    for style in ("attribution", "redaction", "counterfactual"):
        assert v[f"w/ {style} > no training, {style}, one-word, tweets"] == REPRODUCED
        assert v[f"w/ {style} > no training, {style}, multi-word, tweets"] == REPRODUCED
        # w/ predictions is the untrained model: against it the rise is there too.
        assert v[f"w/ {style} > w/ predictions, {style}, one-word, tweets"] == REPRODUCED
    # Trained cells were drawn valid at 0.8, untrained at 0.6: table 10's rise in validity, on all 300 samples.
    for style in ("attribution", "redaction", "counterfactual"):
        assert v[f"w/ {style} > no training in valid {style} explanations, one-word, tweets"] == REPRODUCED
    # The variant equals w/ attribution: it rises over no training, and not at all over w/ attribution.
    assert v["w/ attribution-again (beyond the paper) > no training, attribution, one-word, tweets"] == HOLDS
    # ... and equals it exactly, but 300 samples cannot detect a rise of the declared margin (+0.1): undetermined.
    again = next(r for r in reading_table(study).rows
                 if r["claim"] == "w/ attribution-again (beyond the paper) > w/ attribution, attribution, one-word, tweets")
    assert again["verdict"] == UNDETERMINED and "underpowered" in again["why"] and again["threshold"] == 0.1
    # w/ predictions (identical outcomes) keeps accuracy exactly: a loss of 5 points is ruled out.
    table7 = [r for r in reading_table(study).rows if r["table"] == "table 7"]
    assert {r["claim"] for r in table7} == {f"w/ {c} keeps accuracy, tweets" for c in
                                            ("attribution", "redaction", "counterfactual", "attribution-again")}
    assert all(r["threshold"] == -ACCURACY_MARGIN for r in table7)
    # Every row names what it rests on.
    for r in reading_table(study).rows:
        assert r["valid pairs"] and r["why"], r


@pytest.mark.slow
def test_a_model_that_learned_nothing_is_not_reproduced_where_the_study_could_see_it(tmp_path):
    root = make_study(tmp_path / "s", n=600)  # powered: the paper's +0.115 is detectable at these counts
    _copy_records(root, "none", "attribution")
    v = _verdicts(reading_table(load_study(root)))
    assert v["w/ attribution > no training, attribution, one-word, tweets"] == NOT_REPRODUCED  # change 0 [0, 0]
    assert v["w/ attribution > no training on unseen style redaction, tweets"] == NOT_REPRODUCED  # below +0.1
    # Figure 3's margin is the paper's +0.044: far below what 600 samples detect.
    assert v["w/ attribution (tweets) > no training on unseen vitaminc, attribution"] == UNDETERMINED
    # The same valid explanations as the untrained model, but the paper's +0.069 rise in validity is smaller than
    # what 600 samples detect (+0.077 from 0.6): underpowered, so undetermined, not "not reproduced".
    why = {r["claim"]: r["why"] for r in reading_table(load_study(root)).rows}
    validity = "w/ attribution > no training in valid attribution explanations, one-word, tweets"
    assert v[validity] == UNDETERMINED and "underpowered" in why[validity]
    # The same identical cells on 300 samples: nothing is ruled out.
    small = make_study(tmp_path / "small", n=300)
    _copy_records(small, "none", "attribution")
    v = _verdicts(reading_table(load_study(small)))
    assert v["w/ attribution > no training, attribution, one-word, tweets"] == UNDETERMINED


def test_table3_rows_pair_the_quality_samples(study):
    rows = [r for r in reading_table(study).rows if r["table"] == "table 3"]
    assert [r["claim"].split()[1] for r in rows] == ["attribution", "redaction", "counterfactual"]
    assert all(r["n_pairs"] == 150 for r in rows)  # the quality check's 300 // 2 samples, found in the construction


def test_a_second_construction_is_named_in_its_table3_rows(study):
    # The coupling data: another model's construction beside the study model's.  Its rows must not read as
    # the study model's claim (they were indistinguishable before).
    data = json.loads((study.root / "study.json").read_text())
    crun = Path(data["stages"]["construct|tweets"]["run_dir"])
    other = crun.with_name("construct-tweets-smollm2")
    shutil.copytree(crun, other)
    data["stages"]["construct|tweets|embedded:smollm2-135m"] = {"run_dir": str(other), "seconds": 1.0}
    (study.root / "study.json").write_text(json.dumps(data))
    claims = [r["claim"] for r in reading_table(load_study(study.root)).rows if r["table"] == "table 3"]
    assert len(claims) == len(set(claims)) == 6
    assert sum(c.endswith(" (embedded:smollm2-135m)") for c in claims) == 3


def test_a_classifier_that_answers_one_label_is_named_where_its_faithfulness_is_judged(tmp_path):
    """A model that answers one label to (almost) every input cannot be flipped by any edit: its faithfulness
    near 0 reads the collapse of its classification (cpu-medium's 3-epoch model: 'Negative' to every tweet), and
    the rows that judge it say so; rows on validity, and models that read their input, do not."""
    root = make_study(tmp_path / "s", n=60)

    def collapsed(r):
        r["prediction"] = "Negative" if r["task"] == "tweets" else r["prediction"]
        if r["valid"]:
            r.update(faithful=False, new_prediction=r["prediction"])

    add_variant(root, "collapsed", {"data": "attribution", "settings": {"epochs": 3}, "note": ""}, collapsed)
    study = load_study(root)
    note = "w/ collapsed answers 'Negative' to 60 of 60 samples, so hardly any edit can flip its prediction"
    rows = {r["claim"]: r["why"] for r in reading_table(study).rows}
    judged = [c for c in rows if c.startswith("w/ collapsed (beyond the paper) > ") and "valid" not in c]
    assert len(judged) == 5  # one- and multi-word vs no training and vs w/ attribution; one-word vs w/ predictions
    assert all(note in rows[c] for c in judged), rows
    assert note not in rows["w/ collapsed (beyond the paper) > no training in valid attribution explanations, "
                            "one-word, tweets"]
    assert not any("answers '" in why for claim, why in rows.items() if "collapsed" not in claim)
    cells = {(r["condition"], r["eval task"], r["width"]): r for r in cells_table(study).rows}
    assert cells["w/ collapsed", "tweets", "one"]["most frequent answer"] == "Negative 60 of 60"
    assert cells["w/ collapsed", "tweets", "one"]["top_label_share"] == 1.0
    assert cells["w/ attribution", "tweets", "one"]["top_label_share"] < ONE_LABEL
    routes = {r["condition"]: r for r in routes_table(study).rows}
    assert routes["w/ collapsed§"]["most frequent answer"] == "Negative 60 of 60"
    assert sum(ONE_LABEL_MARK in c for c in routes) == 1
    t4 = faithfulness_table(study, "one", "table4", "")
    assert [r["condition"] for r in t4.rows if r["condition"].endswith(ONE_LABEL_MARK)] == ["w/ collapsed§"]
    # Its verdict against the random baseline is marked too (its flip half says nothing).
    assert [r["vs random baseline"].endswith(ONE_LABEL_MARK) for r in t4.rows] == [
        r["condition"] == "w/ collapsed§" for r in t4.rows]
    assert "§: this model gives one label to 95% of the samples or more" in t4.note
    assert ONE_LABEL_MARK not in faithfulness_table(load_study(make_study(tmp_path / "t", n=60)), "one", "t4", "").note


def test_the_declared_primary_estimand_and_holm_family_drive_the_verdicts(tmp_path):
    from typer.testing import CliRunner

    from selfexplain.cli import app
    from selfexplain.stats import holm

    root = make_study(tmp_path / "s", n=60)
    study = load_study(root)
    rows = reading_table(study).rows
    assert "(declared in the experiment)" in reading_table(study).note  # the defaults, written by reproduce
    faith = [r for r in rows if r.get("primary") == "valid" and r.get("all_diff") is not None]
    assert faith and all(r["diff"] == r["valid_diff"] for r in faith)
    # One family: every claim but table 7's, adjusted together.
    family = [r for r in rows if r["table"] != "table 7"]
    assert [r["holm_p"] for r in family] == holm([r["p_value"] for r in family])
    assert all(r["Holm p"] == "-" for r in rows if r["table"] == "table 7")
    data = json.loads((root / "study.json").read_text())
    del data["experiment"]["reading"]  # a study written before the section existed
    (root / "study.json").write_text(json.dumps(data))
    assert "(the default)" in reading_table(load_study(root)).note
    # Declared in the experiment: among all samples, Holm within each paper table.
    data["experiment"]["reading"] = {"primary": "all", "margin": 0.2, "family": "table"}
    (root / "study.json").write_text(json.dumps(data))
    declared = reading_table(load_study(root))
    assert "among all samples (invalid = not faithful) (declared in the experiment)" in declared.note
    table3 = [r for r in declared.rows if r["table"] == "table 3"]
    assert [r["holm_p"] for r in table3] == holm([r["p_value"] for r in table3])
    assert all(r["diff"] == r["all_diff"] and r["primary"] == "all" for r in table3)
    beyond = [r for r in declared.rows if r["table"] == "figure 4"]  # no paper number: the declared margin
    assert beyond and all(r["threshold"] == 0.2 for r in beyond)
    # Set at report time, the report says so; a bad value is one line naming the flag.
    res = CliRunner().invoke(app, ["report", str(root), "--primary-estimand", "label-balanced",
                                   "--allow-incomplete"])
    assert res.exit_code == 0, res.output
    assert "label-balanced" in (root / "report" / "reading.csv").read_text().splitlines()[1]
    assert "(set at report time)" in (root / "report" / "report.md").read_text()
    res = CliRunner().invoke(app, ["report", str(root), "--primary-estimand", "among-valid"])
    assert res.exit_code != 0 and "--primary-estimand: 'among-valid' is none of valid, all" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_a_constructing_model_that_answers_one_label_is_named_in_table3_and_its_reading(tmp_path):
    """cpu-medium's SmolLM2 answers "Positive" to all 400 construction tweets: table 3's row and the reading's
    claim on it read that collapse, not the explanations, and now say so."""
    from selfexplain.reports.construction import construction_quality_table

    root = make_study(tmp_path / "s", n=60)
    assert ONE_LABEL_MARK not in construction_quality_table(load_study(root)).note
    crun = root / "runs" / "construct-tweets"
    built = [json.loads(line) for line in (crun / "records.jsonl").read_text().splitlines()]
    for r in built:
        r["attribution"]["prediction"] = "Positive"
    (crun / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in built))
    study = load_study(root)
    t3 = construction_quality_table(study)
    assert {r["constructing model's most frequent answer"] for r in t3.rows} == {"Positive 60 of 60§"}
    assert "§: the constructing model gives one label to 95% of its inputs or more" in t3.note
    why = [r["why"] for r in reading_table(study).rows if r["table"] == "table 3"]
    assert len(why) == 3 and all("the model answers 'Positive' to 60 of 60 samples" in w for w in why)
