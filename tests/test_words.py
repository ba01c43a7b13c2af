"""Word definitions: splitting, punctuation, replacement, edit distance."""

from selfexplain import words as W


def test_tokens_split_attached_punctuation():
    toks = W.tokenize('"I hate... waking-up early!" @user #sad (don\'t)')
    assert [t.core for t in toks] == ["I", "hate", "waking-up", "early", "user", "sad", "don't"]
    assert toks[0].prefix == '"' and toks[3].suffix == '!"'


def test_pure_punctuation_is_not_a_word():
    assert W.words("well - that ... was :) fun") == ["well", "that", "was", "fun"]


def test_redacted_marker_keeps_brackets_and_punctuation():
    t = W.split_token("[REDACTED],")
    assert t.is_redacted and t.suffix == ","
    assert W.split_token("([redacted])").is_redacted


def test_replace_every_occurrence_case_insensitive_keep_punctuation():
    text = "Bad, bad day. BAD!"
    assert W.replace_words(text, {"bad"}) == "[REDACTED], [REDACTED] day. [REDACTED]!"


def test_replace_does_not_touch_substrings():
    assert W.replace_words("badly bad", {"bad"}) == "badly [REDACTED]"


def test_replace_positions_counts_words_only():
    assert W.replace_positions("so - good", {1}) == "so - [REDACTED]"


def test_whitespace_is_normalised():
    assert W.replace_words("a   b\tc", set()) == "a b c"


def test_edit_distance_word_level():
    a = W.word_keys("I love waking up early")
    assert W.edit_distance(a, W.word_keys("I hate waking up early")) == 1  # substitute
    assert W.edit_distance(a, W.word_keys("I love waking up")) == 1  # delete
    assert W.edit_distance(a, W.word_keys("I do not love waking up early")) == 2  # two inserts
    assert W.edit_distance(a, a) == 0
    assert W.edit_distance([], a) == 5


def test_case_and_punctuation_do_not_count_as_edits():
    assert W.edit_distance(W.word_keys("Great day!"), W.word_keys("great day.")) == 0


def test_unique_keys_in_first_occurrence_order():
    assert W.unique_keys("b a B c a") == ["b", "a", "c"]


def test_edit_positions_replaces_and_deletes_keeping_punctuation():
    from selfexplain.words import edit_positions

    assert edit_positions("I hate, rainy days!", {1: "love", 3: None}) == "I love, rainy"
    assert edit_positions("a - b", {1: "c"}) == "a - c"  # '-' is not a word: positions skip it


def test_changed_words_lists_insertions_and_substitutions():
    from selfexplain.words import changed_words

    assert changed_words(["I", "hate", "it"], ["I", "Love", "it", "so"]) == ["Love", "so"]
    assert changed_words(["I", "hate", "it"], ["I", "it"]) == []
    assert changed_words(["Hate"], ["hate"]) == []  # compared by key


# ---- words glued by punctuation (real tweets of the default data) ----------------

def test_words_glued_by_punctuation_are_split():
    assert W.words("See you soon...#coachella2015 _ôë") == ["See", "you", "soon", "coachella2015", "_ôë"]
    assert W.words("a huge punishment.#DeflateGate") == ["a", "huge", "punishment", "DeflateGate"]
    assert W.words("well under 90seconds,surely someone") == ["well", "under", "90seconds", "surely", "someone"]
    assert W.words("wait...what") == ["wait", "what"]


def test_punctuation_inside_a_word_keeps_it_whole():
    text = "don't self-driving K.R.I.T AC/DC 10:30 AT&T http://t.co/YEGOxb0irO 3.5"
    assert W.words(text) == text.split()


def test_mis_decoded_bytes_do_not_split_a_token():
    assert W.words("CanÕ¢_\x8aÎ_\x86¢t wait") == ["CanÕ¢_\x8aÎ_\x86¢t", "wait"]


def test_glued_words_are_written_back_without_a_space():
    text = "See you soon...#coachella2015 now"
    assert W.replace_words(text, set()) == text
    assert W.replace_words(text, {"coachella2015"}) == "See you soon...#[REDACTED] now"
    assert W.replace_words(text, {"soon"}) == "See you [REDACTED]...#coachella2015 now"
    assert W.edit_positions(text, {2: None}) == "See you #coachella2015 now"
    assert W.edit_positions(text, {3: None}) == "See you soon... now"


# ---- counterfactual edits: only what N counts is applied ---------------------------

def test_word_edits_apply_only_counted_changes():
    # A real answer of the default model: case changed, the entity decoded, nothing else.
    src = "I was REALLY hoping Big K.R.I.T & Frank Ocean would be apart of #Coachella2015"
    out = "I was really hoping Big K.R.I.T & Frank Ocean would be apart of #Coachella2015"
    assert W.apply_word_edits(src, out) == (src, 0)
    assert W.apply_word_edits("I was REALLY hoping for it!", "I was not really hoping for it.") == (
        "I was not REALLY hoping for it!", 1)
    assert W.apply_word_edits("I love it!", "I hate it.") == ("I hate it!", 1)
    assert W.apply_word_edits("a b c", "a c d") == ("a c d", 2)


def test_word_edits_count_what_they_apply():
    src = "@united I need a credit ASAP. #letsworktogether"
    applied, n = W.apply_word_edits(src, "I need a refund ASAP")
    assert n == W.edit_distance(W.word_keys(src), W.word_keys(applied)) == 3
    assert applied == "I need a refund ASAP."
