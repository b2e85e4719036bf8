from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from voicebot.knowledge.text import analyse, chunk_paragraphs, fold, markdown_paragraphs, stem_en, stem_sl


def test_fold_strips_accents_and_case() -> None:
    assert fold("Plačilo ŠČŽ Ćevapi") == "placilo scz cevapi"


def test_english_stemmer_conflates_inflections() -> None:
    assert stem_en("shipping") == stem_en("shipped") == stem_en("ships") == "ship"
    assert stem_en("deliveries") == stem_en("delivery") == stem_en("delivered")
    assert stem_en("refunds") == stem_en("refunded") == "refund"


def test_slovenian_stemmer_conflates_inflections() -> None:
    forms = ["dostava", "dostave", "dostavo", "dostavi", "dostavimo"]
    assert len({stem_sl(fold(f)) for f in forms}) == 1
    assert stem_sl(fold("plačilo")) == stem_sl(fold("plačila"))
    assert stem_sl("paypal") == stem_sl("paypalom")


def test_analyse_drops_stopwords_per_language() -> None:
    assert analyse("How do I return the item?", "en") == ["return", "item"]
    assert "lahko" not in " ".join(analyse("Ali lahko vrnem izdelek?", "sl"))
    assert analyse("Où est mon colis", "fr") == ["ou", "est", "mon", "colis"]  # folded, not stemmed


def test_markdown_paragraphs_strip_syntax_and_keep_lists() -> None:
    lines = [
        "We **accept** [cards](https://x.example) and `PayPal`:",
        "",
        "- Visa",
        "- *Mastercard*",
        "1. first",
        "",
        "| Country | Price |",
        "|---|---|",
        "| SI | 3.90 |",
    ]
    assert markdown_paragraphs(lines) == [
        "We accept cards and PayPal:",
        "- Visa\n- Mastercard\n1. first",
        "Country, Price\nSI, 3.90",
    ]


def test_chunks_respect_paragraph_and_sentence_boundaries() -> None:
    sentence = "This sentence has exactly eight words in it."
    long_paragraph = " ".join([sentence] * 40)  # 320 words
    chunks = chunk_paragraphs(["Short intro.", long_paragraph], target_words=120)
    assert len(chunks) >= 3
    assert all(len(c.split()) <= 150 for c in chunks)
    assert all(c.rstrip().endswith(".") for c in chunks)
    assert " ".join(" ".join(chunks).split()) == " ".join(f"Short intro. {long_paragraph}".split())


@given(st.text(), st.sampled_from(["en", "sl", "de"]))
def test_analyse_never_raises(text: str, language: str) -> None:
    for term in analyse(text, language):
        assert term and term == fold(term)  # casefolded: str.lower() differs for e.g. Cherokee
