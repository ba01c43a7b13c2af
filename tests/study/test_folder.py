"""The study folder: copies and old formats read their own runs; adapters retrained only when needed."""

import json
from pathlib import Path

import pytest

from selfexplain.errors import UserError
from selfexplain.experiments import load_experiment, read_study, reproduce
from selfexplain.reports import write_study_report


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
