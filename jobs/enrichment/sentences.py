"""Offline sentence splitting for English, Turkish and German (and a fair guess for others).

Rules rather than a trained model: NLTK's punkt data cannot be downloaded here, and news prose
is regular enough. A period ends a sentence unless it closes an abbreviation, an initial, or a
German/Turkish ordinal ("am 3. Oktober", "15 Temmuz"); the next word must start a sentence.
"""

from __future__ import annotations

import re

_COMMON = {"dr", "prof", "no", "nr", "st", "vs", "ca", "mr", "mrs", "ms", "jr", "sr"}
ABBREVIATIONS: dict[str, frozenset[str]] = {
    "en": frozenset(_COMMON | {"inc", "ltd", "co", "corp", "gen", "gov", "sen", "rep", "lt", "col", "capt",
                               "sgt", "fig", "approx", "dept", "est", "mt", "ft", "jan", "feb", "mar", "apr",
                               "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "al"}),
    "de": frozenset(_COMMON | {"bzw", "vgl", "ggf", "evtl", "inkl", "sog", "str", "hr", "fr", "mio", "mrd",
                               "tsd", "jh", "abs", "bspw", "zzgl", "ehem", "gegr", "geb", "dipl", "ing",
                               "jan", "feb", "apr", "aug", "sept", "okt", "nov", "dez"}),
    "tr": frozenset(_COMMON | {"doç", "av", "yrd", "bkz", "sn", "alb", "yzb", "org", "ltd", "şti", "örn",
                               "mah", "cad", "sok", "apt", "tic", "san", "müh", "uzm", "opr", "gn"}),
}
MONTHS = frozenset(
    "january february march april may june july august september october november december "
    "januar februar märz mai juni juli oktober dezember "
    "ocak şubat mart nisan mayıs haziran temmuz ağustos eylül ekim kasım aralık".split()
)
# Candidate ends: terminal punctuation, optional closing quotes/brackets, then whitespace.
_END = re.compile(r"([.!?…]+)([\"'”’»)\]]*)\s+")
_WORD_BEFORE = re.compile(r"(\S+)$")
_OPENERS = "\"'“‘«([„"


def split_sentences(text: str, language: str = "en") -> list[str]:
    """Sentences in order, each exactly as it appears in `text` (stripped)."""
    sentences: list[str] = []
    for block in text.split("\n"):
        sentences.extend(_split_block(block.strip(), language))
    return sentences


def _split_block(block: str, language: str) -> list[str]:
    if not block:
        return []
    abbreviations = ABBREVIATIONS.get(language, ABBREVIATIONS["en"])
    pieces: list[str] = []
    start = 0
    for match in _END.finditer(block):
        end = match.end()
        if end >= len(block):
            break
        if _is_boundary(block, match, abbreviations):
            piece = block[start:match.end(2)].strip()
            if piece:
                pieces.append(piece)
            start = end
    tail = block[start:].strip()
    if tail:
        pieces.append(tail)
    return pieces


def _is_boundary(block: str, match: re.Match[str], abbreviations: frozenset[str]) -> bool:
    following = block[match.end():]
    next_word = following.lstrip(_OPENERS)
    if not next_word:
        return False
    first = next_word[0]
    if not (first.isupper() or first.isdigit() or following[0] in _OPENERS):
        return False  # "e.g. the", "3. oktober", "vs. lowercase": not a new sentence
    if match.group(1) != ".":
        return True  # "!", "?", "…" and "..." end sentences whatever precedes them
    before = _WORD_BEFORE.search(block[: match.start()])
    if before is None:
        return True
    word = before.group(1).lstrip(_OPENERS)
    bare = word.lower().rstrip(".")
    if bare in abbreviations:
        return False
    if len(bare) == 1 and bare.isalpha():
        return False  # an initial: "J. K. Rowling", "z. B."
    if "." in bare and all(len(part) <= 2 for part in bare.split(".")):
        return False  # "U.S", "e.g", "u.a", "d.h"
    if bare.isdigit() and len(bare) <= 2:
        next_token = re.match(r"[\w]+", next_word)
        if next_token and next_token.group(0).lower() in MONTHS:
            return False  # ordinal date: "am 3. Oktober"
    return True
