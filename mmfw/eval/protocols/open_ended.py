"""Open-ended short answers: the VQAv2 answer normalisation, exact match, VQA accuracy, and a
pluggable judge for users who have an LLM judge.

``normalize_answer`` follows the official VQA evaluation script's rules: whitespace folded,
punctuation removed (deleted outright next to a space or in a text with a thousands comma,
otherwise turned into a space), a period removed unless a digit follows, lower case, number
words "none", "zero".."ten" as digits, the articles a / an / the dropped, and apostrophe-less
contractions restored ("dont" → "don't").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from mmfw.data.question_format import reference_answers  # noqa: F401 - part of this protocol

OPEN_SUFFIX = "Answer the question using a single word or phrase."
# Most VQAv2 references have at most three words: longer outputs did not follow the short-answer
# format (LLaVA-1.5's response-format prompt is about exactly this).
SHORT_ANSWER_WORDS = 3

PUNCTUATION = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")  # fmt: skip
NUMBERS = {"none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
           "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10"}  # fmt: skip
ARTICLES = {"a", "an", "the"}
_THOUSANDS = re.compile(r"(\d)(,)(\d)")
_PERIOD = re.compile(r"\.(?!\d)")
# The official script's contractions, keyed by the forms it accepts without apostrophes. Only
# lower-case keys: the script looks words up after lower-casing, so its "Im" / "Ive" never match.
_CONTRACTIONS = {
    "ain't": "aint", "aren't": "arent", "can't": "cant", "could've": "couldve",
    "couldn't": "couldnt", "couldn't've": "couldn'tve couldnt've", "didn't": "didnt",
    "doesn't": "doesnt", "don't": "dont", "hadn't": "hadnt", "hadn't've": "hadnt've hadn'tve",
    "hasn't": "hasnt", "haven't": "havent", "he'd": "hed", "he'd've": "hed've he'dve",
    "he's": "hes", "how'd": "howd", "how'll": "howll", "how's": "hows", "isn't": "isnt",
    "it'd": "itd", "it'd've": "itd've it'dve", "it'll": "itll", "ma'am": "maam",
    "mightn't": "mightnt", "mightn't've": "mightnt've mightn'tve", "might've": "mightve",
    "mustn't": "mustnt", "must've": "mustve", "needn't": "neednt", "not've": "notve",
    "o'clock": "oclock", "oughtn't": "oughtnt", "'ow's'at": "ow's'at 'ows'at 'ow'sat",
    "shan't": "shant", "she'd've": "shed've she'dve", "should've": "shouldve",
    "shouldn't": "shouldnt", "shouldn't've": "shouldnt've shouldn'tve",
    "somebody'd": "somebodyd", "somebody'd've": "somebodyd've somebody'dve",
    "somebody'll": "somebodyll", "somebody's": "somebodys", "someone'd": "someoned",
    "someone'd've": "someoned've someone'dve", "someone'll": "someonell",
    "someone's": "someones", "something'd": "somethingd",
    "something'd've": "somethingd've something'dve", "something'll": "somethingll",
    "that's": "thats", "there'd": "thered", "there'd've": "thered've there'dve",
    "there're": "therere", "there's": "theres", "they'd": "theyd",
    "they'd've": "theyd've they'dve", "they'll": "theyll", "they're": "theyre",
    "they've": "theyve", "'twas": "twas", "wasn't": "wasnt", "we'd've": "wed've we'dve",
    "we've": "weve", "weren't": "werent", "what'll": "whatll", "what're": "whatre",
    "what's": "whats", "what've": "whatve", "when's": "whens", "where'd": "whered",
    "where's": "wheres", "where've": "whereve", "who'd": "whod",
    "who'd've": "whod've who'dve", "who'll": "wholl", "who's": "whos", "who've": "whove",
    "why'll": "whyll", "why're": "whyre", "why's": "whys", "won't": "wont",
    "would've": "wouldve", "wouldn't": "wouldnt", "wouldn't've": "wouldnt've wouldn'tve",
    "y'all": "yall", "y'all'll": "yall'll y'allll", "y'all'd've": "yall'd've y'alld've y'all'dve",
    "you'd": "youd", "you'd've": "youd've you'dve", "you'll": "youll", "you're": "youre",
    "you've": "youve",
}  # fmt: skip
CONTRACTIONS = {form: full for full, forms in _CONTRACTIONS.items() for form in forms.split()}


def _punctuation(text: str) -> str:
    delete = _THOUSANDS.search(text) is not None
    for p in PUNCTUATION:
        if delete or f"{p} " in text or f" {p}" in text:
            text = text.replace(p, "")
        else:
            text = text.replace(p, " ")
    return _PERIOD.sub("", text)


def _words(text: str) -> str:
    out = []
    for word in text.lower().split():
        word = NUMBERS.get(word, word)
        if word not in ARTICLES:
            out.append(CONTRACTIONS.get(word, word))
    return " ".join(out)


def normalize_answer(text: str) -> str:
    """The VQAv2 normal form of an answer (see the module docstring)."""
    text = text.replace("\n", " ").replace("\t", " ").strip()
    return _words(_punctuation(text))


def exact_match(prediction: str, references: list[str]) -> bool:
    """The normalised prediction equals a normalised reference."""
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(r) for r in references)


def vqa_accuracy(prediction: str, references: list[str]) -> float:
    """min(#references equal to the prediction / 3, 1), after normalisation (VQAv2's
    "an answer is right if at least 3 of the 10 annotators gave it"; the official script also
    averages this over the 10 leave-one-out subsets, which changes it by at most 1/30)."""
    pred = normalize_answer(prediction)
    matches = sum(pred == normalize_answer(r) for r in references)
    return min(matches / 3.0, 1.0)


# A judge decides (question, prediction, references) → correct; users plug an LLM judge in
# with benchmark.judge._target_=their.module.Judge. None (default): exact match / VQA accuracy.
Judge = Callable[[str, str, list[str]], bool]


def is_short_answer(prediction: str, max_words: int = SHORT_ANSWER_WORDS) -> bool:
    """Whether the normalised output is a non-empty word or phrase of at most ``max_words``."""
    return 0 < len(normalize_answer(prediction).split()) <= max_words
