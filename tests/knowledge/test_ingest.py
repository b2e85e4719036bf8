from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.errors import ConfigError
from voicebot.knowledge.ingest import load_knowledge

MARKDOWN = """---
title: Shipping
tags: [shipping, Delivery]
---

# Ignored because the front matter has a title

Intro text.

## Delivery times

Parcels take **1-2 days** in [Slovenia](https://example.com).

- Slovenia: 1-2 days
- EU: 3-7 days

### Large items

Freight takes longer.
"""


def write(root: Path, name: str, content: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_markdown_sections_titles_and_text(tmp_path: Path) -> None:
    write(tmp_path, "en/shipping.md", MARKDOWN)
    result = load_knowledge([tmp_path], default_language="sl")
    titles = [p.title for p in result.passages]
    assert titles == ["Shipping", "Shipping › Delivery times", "Shipping › Delivery times › Large items"]
    times = result.passages[1]
    assert times.text == "Parcels take 1-2 days in Slovenia.\n\n- Slovenia: 1-2 days\n- EU: 3-7 days"
    assert times.source == "en/shipping.md#delivery-times"
    assert times.language == "en"  # from the folder
    assert times.tags == ("shipping", "delivery")
    assert times.approved and not times.is_faq


def test_long_section_is_chunked(tmp_path: Path) -> None:
    body = "\n\n".join(f"Paragraph {i} " + "word " * 50 + "end." for i in range(6))
    write(tmp_path, "long.md", f"## Long\n\n{body}\n")
    passages = load_knowledge([tmp_path], default_language="en").passages
    assert len(passages) >= 2
    assert all(len(p.text.split()) <= 150 for p in passages)
    assert len({p.id for p in passages}) == len({p.source for p in passages}) == len(passages)


def test_language_precedence(tmp_path: Path) -> None:
    write(tmp_path, "sl/a.md", "---\nlanguage: en\n---\n## A\n\nText.\n")
    write(tmp_path, "sl/b.md", "## B\n\nBesedilo.\n")
    write(tmp_path, "misc/c.md", "## C\n\nText.\n")
    by_file = {
        p.source.split("#")[0]: p.language for p in load_knowledge([tmp_path], default_language="de").passages
    }
    assert by_file == {"sl/a.md": "en", "sl/b.md": "sl", "misc/c.md": "de"}


def test_draft_document_is_kept_but_not_approved(tmp_path: Path) -> None:
    write(tmp_path, "draft.md", "---\napproved: false\n---\n## Promo\n\nSecret.\n")
    result = load_knowledge([tmp_path], default_language="en")
    assert [p.approved for p in result.passages] == [False]
    assert result.drafts == result.passages and result.approved == []


def test_faq_yaml(tmp_path: Path) -> None:
    write(
        tmp_path,
        "faq.yaml",
        "tags: [faq]\nfaq:\n"
        "  - id: gift\n    questions: ['Gift cards?', 'Vouchers?']\n    answer: Yes.\n"
        "  - question: Can I cancel?\n    answer: Until dispatch.\n    language: sl\n    approved: false\n",
    )
    first, second = load_knowledge([tmp_path], default_language="en").passages
    assert first.questions == ("Gift cards?", "Vouchers?") and first.text == "Yes." and first.is_faq
    assert first.source == "faq.yaml#gift" and first.tags == ("faq",) and first.title == "Gift cards?"
    assert second.language == "sl" and not second.approved and second.source == "faq.yaml#can-i-cancel"


def test_csv(tmp_path: Path) -> None:
    write(
        tmp_path,
        "faq.csv",
        "question,answer,tags,approved,language\n"
        '"Where, exactly?","Ljubljana, Slovenia",a;b,yes,sl\n'
        "Why?,Because.,,,\n",
    )
    first, second = load_knowledge([tmp_path], default_language="en").passages
    assert first.questions == ("Where, exactly?",) and first.text == "Ljubljana, Slovenia"
    assert first.tags == ("a", "b") and first.approved and first.language == "sl"
    assert second.language == "en" and second.tags == ()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("bad.yaml", "faq:\n  - question: [unclosed\n", "line 3"),
        ("bad.yaml", "faq:\n  - question: Q\n  - question: Q2\n", "field faq[0].answer"),
        (
            "bad.yaml",
            "faq:\n  - question: Q\n    answer: A\n  - question: Q\n    answer: A\n    aproved: no\n",
            "field faq[1].aproved",
        ),
        ("bad.yaml", "faq:\n  - question: Q\n    answer: A\n    approved: maybe\n", "field faq[0].approved"),
        ("bad.yaml", "- just a list\n", "field faq"),
        ("bad.csv", "question,reply\nQ,A\n", "line 1"),
        ("bad.csv", "question,answer\nQ,A\nQ2,\n", "line 3"),
        ("bad.csv", "question,answer\nQ,A\nQ2,A,extra\n", "line 3"),
        ("bad.csv", 'question,answer,approved\n"multi\nline",A,true\nQ,A,sometimes\n', "line 4"),
        ("bad.md", "---\napproved: perhaps\n---\n## A\n\nB\n", "field approved"),
        ("bad.md", "---\ntitle: x\n## A\n", "front matter"),
        ("bad.md", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not UTF-8"),
        ("bad.md", "## A\n\nnul \x00 byte\n", "NUL"),
    ],
)
def test_invalid_files_name_file_and_place(
    tmp_path: Path, name: str, content: str | bytes, expected: str
) -> None:
    path = write(tmp_path, name, content)
    with pytest.raises(ConfigError) as info:
        load_knowledge([tmp_path], default_language="en")
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_skipped_files_have_reasons(tmp_path: Path) -> None:
    write(tmp_path, "junk.bin", bytes(range(256)))
    write(tmp_path, "empty.md", "")
    write(tmp_path, "blank.yaml", "  \n")
    write(tmp_path, ".hidden.md", "## A\n\nB\n")
    write(tmp_path, "only-front-matter.md", "---\ntitle: T\n---\n")
    result = load_knowledge([tmp_path], default_language="en")
    reasons = {Path(f).name: r for f, r in result.skipped}
    assert reasons == {
        "junk.bin": "unsupported file type '.bin'",
        "empty.md": "empty file",
        "blank.yaml": "empty file",
        ".hidden.md": "hidden file",
        "only-front-matter.md": "no passages",
    }
    assert result.passages == []


def test_non_strict_collects_errors_and_keeps_going(tmp_path: Path) -> None:
    write(tmp_path, "a.csv", "question\nQ\n")
    write(tmp_path, "b.md", "## Ok\n\nFine.\n")
    result = load_knowledge([tmp_path], default_language="en", strict=False)
    assert len(result.errors) == 1 and "a.csv" in str(result.errors[0])
    assert [p.title for p in result.passages] == ["B › Ok"]


def test_missing_path_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_knowledge([tmp_path / "nope"], default_language="en")


def test_ids_are_stable_across_reingest_and_location(tmp_path: Path) -> None:
    for root in (tmp_path / "one", tmp_path / "two"):
        write(root, "en/shipping.md", MARKDOWN)
        write(root, "faq.yaml", "faq:\n  - question: Q?\n    answer: A.\n")
    first = load_knowledge([tmp_path / "one"], default_language="en").passages
    again = load_knowledge([tmp_path / "one"], default_language="en").passages
    moved = load_knowledge([tmp_path / "two"], default_language="en").passages
    assert [p.id for p in first] == [p.id for p in again] == [p.id for p in moved]
    assert len({p.id for p in first}) == len(first)
    # editing the text changes the content hash, not the id
    write(tmp_path / "two", "faq.yaml", "faq:\n  - question: Q?\n    answer: A changed.\n")
    edited = load_knowledge([tmp_path / "two"], default_language="en").passages
    assert edited[-1].id == first[-1].id and edited[-1].content_hash != first[-1].content_hash
