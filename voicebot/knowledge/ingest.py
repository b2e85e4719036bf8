"""Knowledge-base ingest: Markdown, FAQ YAML and CSV files -> `Passage` objects.

`load_knowledge(paths, default_language=...)` walks folders (recursively, in sorted order) and
files. Each supported file becomes passages:

- Markdown (``.md``): optional YAML front matter (``title``, ``language``, ``tags``, ``approved``),
  split at ``##`` / ``###`` headings (the heading path is the title) and into ~120-word chunks.
- FAQ YAML (``.yaml`` / ``.yml``): ``faq: [{id?, question | questions, answer, language?, tags?,
  approved?}]``; top-level ``language`` / ``tags`` / ``approved`` are defaults for every entry.
- CSV (``.csv``): a header with ``question`` and ``answer``, optional ``language``, ``tags``
  (``;``-separated), ``approved``, ``id``.

Other file types, hidden files and empty files are skipped with a reason. An invalid file raises
`ConfigError` naming the file and the line (CSV, YAML syntax) or the entry and field (FAQ YAML);
with ``strict=False`` the errors are collected in `IngestResult.errors` instead.

A passage's language comes from its front matter / entry / column, else from the nearest folder
named after an ISO 639-1 code (``en/``, ``sl/``), else `default_language`. Passage ids are stable:
a hash of the path relative to the KB root, the heading path or FAQ id, and the language.
``approved: false`` passages are kept as drafts; retrieval never indexes them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from voicebot.errors import ConfigError
from voicebot.knowledge.text import chunk_paragraphs, markdown_paragraphs, slug

__all__ = ["CHUNK_WORDS", "TITLE_SEPARATOR", "IngestResult", "Passage", "load_knowledge", "passage_id"]

CHUNK_WORDS = 120
TITLE_SEPARATOR = " › "
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
_HEADING = re.compile(r"^(#{1,3})\s+(.*?)\s*#*\s*$")
# ISO 639-1 codes a folder may be named after (others are ordinary folders).
ISO_639_1 = frozenset(
    str.split(
        """aa ab af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de
    dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia id
    ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo lt lu
    lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl ps pt qu
    rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr
    ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"""
    )
)


@dataclass(frozen=True, slots=True)
class Passage:
    """One retrievable unit of approved (or draft) knowledge."""

    id: str
    source: str  # path relative to the KB root + "#anchor"
    title: str
    text: str  # plain text; for an FAQ entry, its answer
    language: str
    tags: tuple[str, ...] = ()
    approved: bool = True
    questions: tuple[str, ...] = ()  # FAQ only: the question and its paraphrases
    content_hash: str = ""  # computed from title, text, questions and tags when left empty

    def __post_init__(self) -> None:
        if not self.content_hash:
            body = "\x1f".join((self.title, self.text, *self.questions, "\x1e", *self.tags))
            object.__setattr__(self, "content_hash", hashlib.sha256(body.encode()).hexdigest()[:16])

    @property
    def is_faq(self) -> bool:
        return bool(self.questions)


@dataclass(slots=True)
class IngestResult:
    passages: list[Passage] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    errors: list[ConfigError] = field(default_factory=list)  # only with strict=False

    @property
    def approved(self) -> list[Passage]:
        return [p for p in self.passages if p.approved]

    @property
    def drafts(self) -> list[Passage]:
        return [p for p in self.passages if not p.approved]


def passage_id(relative_path: str, anchor_path: str, language: str) -> str:
    """Stable id: the same file, heading path and language give the same id on every ingest."""
    key = f"{relative_path}\x1f{anchor_path}\x1f{language}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(slots=True)
class _Doc:
    """One file being parsed: where it is, what errors should name, its inherited language."""

    path: Path
    relative: str
    language: str
    anchors: set[str] = field(default_factory=set)

    def error(self, message: str, field: str | None = None) -> ConfigError:
        return ConfigError(message, file=str(self.path), field=field)

    def anchor(self, wanted: str) -> str:
        """A unique anchor within the file (GitHub style: name, name-1, name-2...)."""
        anchor, n = wanted, 0
        while anchor in self.anchors:
            n += 1
            anchor = f"{wanted}-{n}"
        self.anchors.add(anchor)
        return anchor


def load_knowledge(paths: list[Path], *, default_language: str, strict: bool = True) -> IngestResult:
    """Read every KB file under `paths` (folders or files). See the module docstring."""
    result = IngestResult()
    seen: dict[str, str] = {}
    for root, file in _walk(paths):
        relative = file.relative_to(root).as_posix()
        try:
            passages, reason = _load_file(root, file, relative, default_language)
            for passage in passages:
                if passage.id in seen:  # only possible with duplicate explicit ids across roots
                    raise ConfigError(
                        f"duplicate passage {passage.source} (also {seen[passage.id]})", file=str(file)
                    )
                seen[passage.id] = passage.source
        except ConfigError as exc:
            if strict:
                raise
            result.errors.append(exc)
            continue
        if reason:
            result.skipped.append((str(file), reason))
        result.passages.extend(passages)
    return result


def _walk(paths: list[Path]) -> list[tuple[Path, Path]]:
    out: list[tuple[Path, Path]] = []
    for path in paths:
        if path.is_dir():
            out.extend((path, f) for f in sorted(path.rglob("*")) if f.is_file())
        elif path.is_file():
            out.append((path.parent, path))
        else:
            raise ConfigError("the knowledge path does not exist", file=str(path))
    return out


def _folder_language(root: Path, relative: str) -> str | None:
    folders = [root.name, *relative.split("/")[:-1]]
    for name in reversed(folders):
        if name.lower() in ISO_639_1:
            return name.lower()
    return None


def _load_file(root: Path, file: Path, relative: str, default_language: str) -> tuple[list[Passage], str]:
    """The passages of one file, or ([], reason) when it is skipped."""
    if any(part.startswith(".") for part in relative.split("/")):
        return [], "hidden file"
    parser = _PARSERS.get(file.suffix.lower())
    if parser is None:
        return [], f"unsupported file type {file.suffix or '(none)'!r}"
    data = file.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); save the file as UTF-8",
            file=str(file),
        ) from None
    if "\x00" in text:
        raise ConfigError("binary content (NUL bytes) in a text file", file=str(file))
    if not text.strip():
        return [], "empty file"
    doc = _Doc(file, relative, _folder_language(root, relative) or default_language)
    passages = parser(doc, text)
    return passages, "" if passages else "no passages"


# --- shared field validation ------------------------------------------------------------------


def _language(doc: _Doc, value: Any, field: str) -> str:
    if not isinstance(value, str) or not _LANGUAGE.match(value):
        raise doc.error(f"{value!r} is not an ISO 639-1 language code", field)
    return value


def _tags(doc: _Doc, value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = re.split(r"[;,]", value)
    if not isinstance(value, list) or not all(isinstance(t, str | int) for t in value):
        raise doc.error("tags must be a list of strings", field)
    return tuple(dict.fromkeys(str(t).strip().lower() for t in value if str(t).strip()))


_TRUE = {"true", "yes", "1", "y"}
_FALSE = {"false", "no", "0", "n"}


def _approved(doc: _Doc, value: Any, field: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise doc.error(f"approved must be true or false, not {value!r}", field)


def _text(doc: _Doc, value: Any, field: str) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool) or not str(value).strip():
        raise doc.error("must be non-empty text", field)
    return " ".join(str(value).split()) if "\n" not in str(value) else str(value).strip()


# --- Markdown ---------------------------------------------------------------------------------

_FRONT_MATTER_KEYS = {"title", "language", "tags", "approved"}


def _markdown(doc: _Doc, text: str) -> list[Passage]:
    lines = text.splitlines()
    meta: dict[str, Any] = {}
    if lines and lines[0].strip() == "---":
        end = next((i for i in range(1, len(lines)) if lines[i].strip() in ("---", "...")), None)
        if end is None:
            raise doc.error("front matter opened with '---' on line 1 is never closed", "front matter")
        try:
            loaded = yaml.safe_load("\n".join(lines[1:end])) or {}
        except yaml.YAMLError as exc:
            raise doc.error(f"front matter is not valid YAML: {exc}", "front matter") from None
        if not isinstance(loaded, dict):
            raise doc.error("front matter must be a mapping", "front matter")
        meta, lines = loaded, lines[end + 1 :]
        for key in meta:
            if key not in _FRONT_MATTER_KEYS:
                raise doc.error(f"unknown key (known: {', '.join(sorted(_FRONT_MATTER_KEYS))})", str(key))
    language = _language(doc, meta["language"], "language") if "language" in meta else doc.language
    tags = _tags(doc, meta["tags"], "tags") if "tags" in meta else ()
    approved = _approved(doc, meta["approved"], "approved") if "approved" in meta else True
    doc_title = _text(doc, meta["title"], "title") if "title" in meta else ""

    sections: list[tuple[tuple[str, ...], list[str]]] = [((), [])]
    in_code = False
    for line in lines:
        if line.strip().startswith(("```", "~~~")):
            in_code = not in_code
        heading = None if in_code else _HEADING.match(line)
        if heading is None:
            sections[-1][1].append(line)
            continue
        level, name = len(heading.group(1)), heading.group(2).strip()
        if level == 1:
            doc_title = doc_title or name
            continue
        path = sections[-1][0]
        path = (name,) if level == 2 or not path else (path[0], name)
        sections.append((path, []))

    doc_title = doc_title or Path(doc.relative).stem.replace("-", " ").replace("_", " ").capitalize()
    passages: list[Passage] = []
    for path, body in sections:
        chunks = chunk_paragraphs(markdown_paragraphs(body), CHUNK_WORDS)
        anchor = doc.anchor(slug(path[-1])) if path and chunks else ""
        for n, chunk in enumerate(chunks):
            part = f"{anchor}-{n + 1}" if n and anchor else (f"part-{n + 1}" if n else anchor)
            passages.append(
                Passage(
                    id=passage_id(doc.relative, "/".join(path) + f"#{n}", language),
                    source=f"{doc.relative}#{part}" if part else doc.relative,
                    title=TITLE_SEPARATOR.join((doc_title, *path)),
                    text=chunk,
                    language=language,
                    tags=tags,
                    approved=approved,
                )
            )
    return passages


# --- FAQ YAML ---------------------------------------------------------------------------------

_FAQ_KEYS = {"id", "question", "questions", "answer", "language", "tags", "approved"}


def _faq_yaml(doc: _Doc, text: str) -> list[Passage]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise doc.error(f"{where}not valid YAML: {problem}") from None
    if not isinstance(data, dict) or "faq" not in data:
        raise doc.error("an FAQ file is a mapping with a 'faq' list", "faq")
    unknown = set(data) - {"faq", "language", "tags", "approved"}
    if unknown:
        raise doc.error("unknown top-level key (known: faq, language, tags, approved)", sorted(unknown)[0])
    entries = data["faq"]
    if not isinstance(entries, list):
        raise doc.error("must be a list of entries", "faq")
    language = _language(doc, data["language"], "language") if "language" in data else doc.language
    tags = _tags(doc, data["tags"], "tags") if "tags" in data else ()
    approved = _approved(doc, data["approved"], "approved") if "approved" in data else True
    passages = []
    for i, entry in enumerate(entries):
        where = f"faq[{i}]"
        if not isinstance(entry, dict):
            raise doc.error("each entry must be a mapping", where)
        for key in entry:
            if key not in _FAQ_KEYS:
                raise doc.error(f"unknown key (known: {', '.join(sorted(_FAQ_KEYS))})", f"{where}.{key}")
        if ("question" in entry) == ("questions" in entry):
            raise doc.error("give exactly one of 'question' or 'questions'", f"{where}.question")
        if "questions" in entry:
            raw = entry["questions"]
            if not isinstance(raw, list) or not raw:
                raise doc.error("must be a non-empty list", f"{where}.questions")
            questions = tuple(_text(doc, q, f"{where}.questions[{j}]") for j, q in enumerate(raw))
        else:
            questions = (_text(doc, entry["question"], f"{where}.question"),)
        if "answer" not in entry:
            raise doc.error("missing", f"{where}.answer")
        fields = {
            "id": _text(doc, entry["id"], f"{where}.id") if "id" in entry else None,
            "answer": _text(doc, entry["answer"], f"{where}.answer"),
            "language": _language(doc, entry.get("language", language), f"{where}.language"),
            "tags": _tags(doc, entry["tags"], f"{where}.tags") if "tags" in entry else tags,
            "approved": _approved(doc, entry.get("approved", approved), f"{where}.approved"),
        }
        passages.append(_faq_passage(doc, questions, fields, where))
    return passages


def _faq_passage(doc: _Doc, questions: tuple[str, ...], fields: dict[str, Any], where: str) -> Passage:
    explicit = fields["id"]
    wanted = slug(explicit) if explicit else slug(questions[0])[:60].rstrip("-")
    if explicit and wanted in doc.anchors:
        raise doc.error(f"duplicate id {explicit!r}", f"{where}.id")
    anchor = doc.anchor(wanted)
    return Passage(
        id=passage_id(doc.relative, f"faq/{anchor}", fields["language"]),
        source=f"{doc.relative}#{anchor}",
        title=questions[0],
        text=fields["answer"],
        language=fields["language"],
        tags=fields["tags"],
        approved=fields["approved"],
        questions=questions,
    )


# --- CSV --------------------------------------------------------------------------------------

_CSV_COLUMNS = {"question", "answer", "language", "tags", "approved", "id"}


def _faq_csv(doc: _Doc, text: str) -> list[Passage]:
    reader = csv.reader(io.StringIO(text))
    line = 1
    try:
        header = [h.strip().lower() for h in next(reader)]
        for name in ("question", "answer"):
            if name not in header:
                raise doc.error(
                    f"line 1: the header has no {name!r} column (found: {', '.join(header)})", name
                )
        for name in header:
            if name not in _CSV_COLUMNS:
                raise doc.error(f"line 1: unknown column (known: {', '.join(sorted(_CSV_COLUMNS))})", name)
        passages = []
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise doc.error(f"line {line}: {len(row)} fields, the header has {len(header)}")
            cells = {name: row[i].strip() for i, name in enumerate(header)}
            passages.append(_csv_passage(doc, cells, line))
    except csv.Error as exc:
        raise doc.error(f"line {line}: not valid CSV: {exc}") from None
    return passages


def _csv_passage(doc: _Doc, cells: dict[str, str], line: int) -> Passage:
    def need(name: str) -> str:
        if not cells.get(name):
            raise doc.error(f"line {line}: {name} is empty", name)
        return cells[name]

    def at(name: str) -> str:
        return f"line {line}, column {name}"

    language = cells.get("language")
    fields = {
        "id": cells.get("id") or None,
        "answer": need("answer"),
        "language": _language(doc, language, at("language")) if language else doc.language,
        "tags": _tags(doc, cells["tags"], at("tags")) if cells.get("tags") else (),
        "approved": _approved(doc, cells["approved"], at("approved")) if cells.get("approved") else True,
    }
    return _faq_passage(doc, (need("question"),), fields, f"line {line}")


_PARSERS: dict[str, Callable[[_Doc, str], list[Passage]]] = {
    ".md": _markdown,
    ".markdown": _markdown,
    ".yaml": _faq_yaml,
    ".yml": _faq_yaml,
    ".csv": _faq_csv,
}
