"""The paper's figures: every model drawn so that it can be told apart from the others."""

import json

import matplotlib.colors as mcolors
from matplotlib import pyplot as plt
from study_factory import add_variant, make_study

from selfexplain.reports import figures
from selfexplain.reports.study import load_study


def _drawn(monkeypatch, draw) -> dict[str, set[str]]:
    """Legend label -> colours of the artists carrying it, in the figure ``draw`` makes."""
    seen: dict[str, set[str]] = {}

    def keep(fig, path):
        for ax in fig.axes:
            for handle, label in zip(*ax.get_legend_handles_labels()):
                if hasattr(handle, "patches"):  # bars
                    colour = handle.patches[0].get_facecolor()
                elif hasattr(handle, "lines"):  # error bars: the data line
                    colour = handle.lines[0].get_color()
                else:
                    colour = handle.get_color()
                seen.setdefault(label, set()).add(mcolors.to_hex(colour))
        plt.close(fig)
        return path

    monkeypatch.setattr(figures, "_save", keep)
    draw()
    return seen


def test_every_condition_beyond_the_paper_has_its_own_colour(tmp_path, monkeypatch):
    """cpu-medium's four variants were all drawn in one purple (figures 2 and 4): a reader could not tell GRPO
    from DPO or the 3-epoch model."""
    root = make_study(tmp_path / "s", n=20)
    for name in ("three-epochs", "grpo", "dpo"):
        study = add_variant(root, name, {"data": "attribution", "method": "sft", "note": ""}, lambda r: None)
        (root / "study.json").write_text(json.dumps(study))
    study = load_study(root)
    for draw in (lambda: figures.figure4_cross_style(study, tmp_path), lambda: figures.figure2_by_n(study, tmp_path)):
        seen = _drawn(monkeypatch, draw)
        models = {label: colours for label, colours in seen.items() if label.startswith(("w/", "no training"))}
        assert {"w/ three-epochs", "w/ grpo", "w/ dpo", "w/ attribution", "no training"} <= set(models)
        assert all(len(c) == 1 for c in models.values()), models
        assert len({next(iter(c)) for c in models.values()}) == len(models), models


def test_figures_draw_without_deprecated_calls(tmp_path):
    """Figure 4's error bars were (2, 1) arrays, whose rows matplotlib reads as scalars: NumPy deprecates that
    (456 warnings per test run) and will make it an error."""
    import warnings

    study = load_study(make_study(tmp_path / "s", n=30))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        drawn = figures.all_figures(study, tmp_path)
    assert "figure4_cross_style.png" in {p.name for p in drawn}
