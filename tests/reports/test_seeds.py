"""Training seeds: the seeds table and the reading on a condition trained with several seeds."""

import pytest
from study_factory import add_seed, make_study

from selfexplain.reports import all_tables
from selfexplain.reports.reading import reading_table
from selfexplain.reports.seeds import seeds_table
from selfexplain.reports.study import load_study
from selfexplain.reports.tables import cells_table, faithfulness_table

CLAIM = "w/ attribution > no training, attribution, one-word, tweets"


def _unfaithful(r):
    if r["valid"]:
        r["faithful"] = False
        r["new_prediction"] = r["prediction"]


def test_seeds_are_their_own_cells_and_every_other_table_reads_the_studys_own_model(tmp_path):
    root = make_study(tmp_path / "s", n=150)
    before = {t.name: t.csv() for t in all_tables(load_study(root)) if t.name not in ("cells",)}
    add_seed(root, "attribution", 1, lambda r: None)
    add_seed(root, "attribution", 2, lambda r: None)
    study = load_study(root)
    assert len(study.seeded) == 6 and all(c.seed in (1, 2) for c in study.seeded)
    assert study.cell("attribution", "tweets", "tweets", "one").seed is None
    after = {t.name: t.csv() for t in all_tables(study)}
    for name, csv in before.items():
        if name != "reading":  # the reading's rows on w/ attribution now also name the seeds
            assert after[name] == csv, name
    cells = [r["condition"] for r in cells_table(study).rows]
    assert cells.count("w/ attribution (training seed 2)") == 3
    # Identical seeds: no spread; the mean is the one model's change.
    rows = {(r["eval task"], r["width"], r["style"]): r for r in seeds_table(study).rows}
    one = rows["tweets", "one", "attribution"]
    assert one["seeds"] == "0, 1, 2" and one["spread"] == 0
    t4 = {(r["condition"], r["style"]): r for r in faithfulness_table(study, "one", "t4", "").rows}
    assert one["mean"] == pytest.approx(t4["w/ attribution", "attribution"]["diff"])
    reading = {r["claim"]: r for r in reading_table(study).rows}
    assert "across 3 training seeds (among valid): mean" in reading[CLAIM]["why"]
    assert reading[CLAIM]["estimands"] == "robust"


def test_a_seed_that_learned_nothing_widens_the_interval_and_breaks_robustness(tmp_path):
    root = make_study(tmp_path / "s", n=150)
    add_seed(root, "attribution", 1, _unfaithful)
    add_seed(root, "attribution", 2, lambda r: None)
    study = load_study(root)
    row = next(r for r in seeds_table(study).rows if (r["eval task"], r["width"], r["style"]) ==
               ("tweets", "one", "attribution"))
    per_seed = [float(x) for x in row["change per seed"].split(", ")]
    assert per_seed[0] == per_seed[2] > 0.2 and per_seed[1] < 0  # the unfaithful seed falls below no training
    assert row["spread"] > 0.2
    assert row["high"] - row["low"] > 2 * (row["one_high"] - row["one_low"])
    assert row["low"] < 0  # with training variance, a rise is no longer certain
    reading = {r["claim"]: r for r in reading_table(study).rows}
    assert reading[CLAIM]["estimands"].endswith("seeds: unclear")
