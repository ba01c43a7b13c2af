"""Experiment files and presets: validation, one error line per bad field, the former names."""

import pytest
import yaml

from selfexplain.errors import UserError
from selfexplain.experiments import load_experiment, preset_names


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


# ---- property-based: any mapping in an experiment file is an experiment or one error line ---------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st

from strategies import VALUES as _values  # noqa: E402
from strategies import loads_or_one_line

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
