"""Tables: the per-N column appears in multi-word mode only; the influence view shades words."""

from selfexplain.evaluation import summarize
from selfexplain.reports import influence_text, summary_markdown


def _rec(sid, width, n, faithful):
    return {"sample_id": sid, "style": "attribution", "valid": True, "n": n, "faithful": faithful,
            "prediction": "Positive", "gold": "Positive", "reason": None, "explanation_truncated": False,
            "task": "t", "width": width}


def test_per_n_column_only_for_multi_word():
    one = summary_markdown(summarize([_rec("a", "one", 1, True)]))
    multi = summary_markdown(summarize([_rec("a", "multi", 2, True), _rec("b", "multi", 2, False)]))
    assert "by N" not in one
    assert "by N" in multi and "2:0.500(2)" in multi


def test_influence_text_keeps_text_and_shades_words():
    t = influence_text(["I", "hate", "it"], [0.0, 0.6, -0.1], "I hate it!")
    assert t.plain == "I hate it!"
    styles = {t.plain[s.start:s.end]: str(s.style) for s in t.spans}
    assert "rgb(255,55,55)" in styles["hate"]  # the strongest positive influence is the reddest
    assert "it" in styles and "255)" in styles["it"]  # negative influence shades blue


def _counterfactual_summary():
    recs = [{**_rec(str(i), "one", 1, i % 2 == 0), "style": "counterfactual"} for i in range(3)]
    recs.append({**_rec("x", "one", None, None), "style": "counterfactual", "valid": False, "reason": "wrong_word_count"})
    return summarize(recs)


def test_cells_under_fifty_valid_are_marked():
    md = summary_markdown(_counterfactual_summary())
    assert "0.667 [0.09, 0.99]†" in md  # exact interval on 3 valid, marked


def test_summary_table_stays_whole_in_a_log_file():
    import io

    from rich.console import Console

    from selfexplain import cli
    from selfexplain.reports import summary_table

    assert cli.console.width == cli.LOG_WIDTH  # pytest's stdout is not a terminal
    buf = io.StringIO()
    Console(file=buf, width=cli.console.width).print(summary_table(_counterfactual_summary()))
    text = buf.getvalue()
    assert "counterfactual " in text and "wrong_word_count 1" in text


def test_help_keeps_bracketed_text():
    from typer.testing import CliRunner

    from selfexplain.cli import app

    out = CliRunner().invoke(app, ["evaluate", "--help"], terminal_width=200).output
    assert "pip install 'selfexplain[vllm]'" in out
