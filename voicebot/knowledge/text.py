"""Text analysis for keyword retrieval: folding, tokenising, stopwords and light stemmers.

`analyse(text, language)` is the one entry point: lowercase, strip accents (NFKD; "č" -> "c",
so a caller who types without diacritics still matches), split on non-word characters, drop
stopwords and one-letter tokens (digits are kept), and stem. English and Slovenian have a light
suffix stemmer each (a few dozen suffix rules, no dictionary); other languages are folded only.
The same function analyses the KB and the queries, so both sides always agree.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

__all__ = [
    "STOPWORDS",
    "analyse",
    "chunk_paragraphs",
    "fold",
    "inline_text",
    "markdown_paragraphs",
    "slug",
    "stem_en",
    "stem_sl",
    "tokens",
    "word_count",
]

_TOKEN = re.compile(r"[^\W_]+")


def _words(text: str) -> list[str]:
    return text.split()


# Stored folded (lowercase, no accents) because they are compared after folding.
STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        _words(
            """a about above after again against all am an and any are as at be because been before being
        below between both but by can could did do does doing done down during each few for from further
        get got had has have having he her here hers herself him himself his how i if im in into is it its
        itself ive just let lets me more most my myself no nor not now of off on once only or other our
        ours ourselves out over own please same she should so some such than thank thanks that the their
        theirs them themselves then there these they this those through to too under until up us very
        want was we were what when where which while who whom why will with would you your yours
        yourself yourselves hi hello hey dear regards tell know like need id ill youre dont cant does
        also may might must shall there much many won didn doesn isn aren wasn weren haven hasn couldn
        wouldn shouldn ll ve re possible something anything way just"""
        )
    ),
    "sl": frozenset(
        _words(
            """a ali ampak bi bil bila bile bili bilo biti bo bodo bom bomo boste bos da do dober dobro dan
        ga in iz ja jaz je jih jim jo k kaj kako kakor kam kar kateri katera katere katero kdaj kdo ker
        kje ko koliko kot lahko le me med mene mi midva moj moja moje mu na nam nas naj nama ne nek neka
        nekaj ni nic niti o od on ona oni ono onadva pa po pod pozdravljeni pozdrav prosim pri ra rad
        rada radi s sa se sem si sta ste smo so sva svoj svoja svoje ta tako tam te tega tej tem temu ti
        to tudi tukaj v vam vas vase vi vsaj z za zakaj ze zelim zelel zelela zelo hvala lep lepa
        imam imate ima imamo bi mogoce morda res sedaj zdaj kje vase vasa vas njihov njen njegov ki
        nisem nismo niste moram mora moramo morate hocem hotel hotela pravkar se sploh zanima zanimalo
        prosil prosila ok okej"""
        )
    ),
}

# Longest suffix first; a suffix is only removed if the stem keeps MIN_STEM characters.
_SL_SUFFIXES = sorted(
    _words(
        """ovanje evanje anje enje itev atev ijah ijam ijo ija ije iji ij ovega evega ovemu ovih ovim
    ega emu ima imi ih im ov ev om em ah eh ami ama ej ovi ove ova ila ilo ilu ili il
    ati iti eti ate ite ete amo imo emo ujem ujete ujemo uje am as ajo ijo ejo es is nih nim ni na no ne
    ja ju je jo ji a e i o u"""
    ),
    key=len,
    reverse=True,
)
MIN_STEM = 3
SL_STEM_MAX = 5  # Slovenian stems are truncated: inflection also changes the stem's tail


def fold(text: str) -> str:
    """Lowercase and strip accents (combining marks after NFKD)."""
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokens(text: str) -> list[str]:
    """Folded word tokens, no stopword removal or stemming."""
    return _TOKEN.findall(fold(text))


def stem_en(word: str) -> str:
    """A light English stemmer: plurals, -ing/-ed/-ly, final -y and -e."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith(("sses", "xes", "ches", "shes", "zes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ied", "ed", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)] + ("y" if suffix == "ied" else "")
            if len(word) >= 4 and word[-1] == word[-2] and word[-1] not in "lsz":
                word = word[:-1]  # shipp -> ship
            break
    if len(word) > 4 and word.endswith("y") and word[-2] not in "aeiou":
        word = word[:-1]
    if len(word) > 4 and word.endswith("e"):
        word = word[:-1]
    return word


def stem_sl(word: str) -> str:
    """A light Slovenian stemmer on folded text: strip one inflectional suffix, then truncate."""
    if len(word) <= MIN_STEM or word.isdigit():
        return word
    for suffix in _SL_SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
            word = word[: -len(suffix)]
            break
    return word[:SL_STEM_MAX]


_STEMMERS = {"en": stem_en, "sl": stem_sl}


@lru_cache(maxsize=65536)
def _analyse_token(token: str, language: str) -> str | None:
    if token in STOPWORDS.get(language, ()) or (len(token) == 1 and not token.isdigit()):
        return None
    stemmer = _STEMMERS.get(language)
    return stemmer(token) if stemmer else token


def analyse(text: str, language: str) -> list[str]:
    """The index terms of a text in a language (the same for documents and queries)."""
    out: list[str] = []
    for token in tokens(text):
        term = _analyse_token(token, language)
        if term is not None:
            out.append(term)
    return out


def slug(text: str) -> str:
    """A URL anchor: folded words joined by '-' (GitHub style, accents dropped)."""
    return "-".join(tokens(text)) or "section"


def word_count(text: str) -> int:
    return len(text.split())


# --- Markdown to plain text -------------------------------------------------------------------

_INLINE = [
    (re.compile(r"<!--.*?-->", re.S), ""),
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # images -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # links -> their text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # reference links
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # autolinks
    (re.compile(r"</?[A-Za-z][^>]*>"), ""),  # inline HTML tags
    (re.compile(r"`+([^`]*)`+"), r"\1"),
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?!\w)"), r"\1"),
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),
    (re.compile(r"~~(.+?)~~"), r"\1"),
    (re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~])"), r"\1"),
]
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|(\d{1,3})[.)])\s+(.*)$")
_RULE = re.compile(r"^\s*(?:[-*_]\s*){3,}$")
_TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-ZČŠŽĆĐ0-9])")


def inline_text(line: str) -> str:
    """Strip inline Markdown (links, emphasis, code, HTML) from one line."""
    for pattern, repl in _INLINE:
        line = pattern.sub(repl, line)
    return " ".join(line.split())


def markdown_paragraphs(lines: list[str]) -> list[str]:
    """Block Markdown -> plain paragraphs. List items stay one per line ("- item"), tables become
    "cell, cell" rows, quotes and rules are unwrapped, code blocks are kept verbatim."""
    paragraphs: list[str] = []
    block: list[str] = []
    in_code = False

    def flush() -> None:
        text = "\n".join(line for line in block if line)
        if text.strip():
            paragraphs.append(text)
        block.clear()

    for raw in lines:
        stripped = raw.strip()
        if stripped.startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code:
            block.append(stripped)
            continue
        stripped = re.sub(r"^(?:>\s?)+", "", stripped)
        if not stripped:
            flush()
            continue
        if _RULE.match(stripped) or _TABLE_SEPARATOR.match(stripped):
            continue
        item = _LIST_ITEM.match(stripped)
        if stripped.startswith("|") or (stripped.endswith("|") and "|" in stripped[:-1]):
            cells = [inline_text(c) for c in stripped.strip("|").split("|")]
            block.append(", ".join(c for c in cells if c))
        elif stripped.startswith("#"):  # a heading below ### stays a line of its section
            block.append(inline_text(stripped.lstrip("#").strip().rstrip("#").strip()))
        elif item:
            marker = f"{item.group(1)}." if item.group(1) else "-"
            block.append(f"{marker} {inline_text(item.group(2))}")
        elif block:  # a wrapped line continues the paragraph or list item above (lazy continuation)
            block[-1] = f"{block[-1]} {inline_text(stripped)}".strip()
        else:
            block.append(inline_text(stripped))
    flush()
    return paragraphs


def chunk_paragraphs(paragraphs: list[str], target_words: int = 120) -> list[str]:
    """Pack paragraphs into chunks of about `target_words`, splitting long paragraphs on line
    and sentence boundaries (a single over-long sentence is split on words)."""
    limit = int(target_words * 1.25)
    units: list[tuple[str, str]] = []  # (separator before, text)
    for paragraph in paragraphs:
        if word_count(paragraph) <= limit:
            units.append(("\n\n", paragraph))
            continue
        separator = "\n\n"
        for line in paragraph.split("\n"):
            pieces = [line] if word_count(line) <= limit else _SENTENCE_END.split(line)
            for piece in pieces:
                words = piece.split()
                for start in range(0, len(words), limit):
                    units.append((separator, " ".join(words[start : start + limit])))
                    separator = " "
            separator = "\n"
    chunks: list[str] = []
    current = ""
    for separator, text in units:
        if current and word_count(current) + word_count(text) > limit:
            chunks.append(current)
            current = ""
        current = f"{current}{separator}{text}" if current else text
    if current:
        chunks.append(current)
    return chunks
