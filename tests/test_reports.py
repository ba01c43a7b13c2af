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
