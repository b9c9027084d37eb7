"""Find source files and load them into cleaned :class:`Document` values.

:func:`discover` turns command-line arguments (files, folders, globs) into :class:`SourceFile` values;
:func:`load` reads one of them. Problems with one source are reported as :class:`IngestFailure` or raised
as :class:`IngestError` naming that source, so one bad file never stops a run.

Metadata layers, lowest priority first: Markdown front matter (or a ticket's own columns), the
``<file>.meta.json`` sidecar, then ``--meta``.
"""

from __future__ import annotations

import codecs
import dataclasses
import glob
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import yaml
from frontmatter.default_handlers import YAMLHandler
from pypdf import PdfReader

from answerdesk.errors import IngestError
from answerdesk.ingest.cleaning import html_to_sections, markdown_to_sections, plain_to_sections
from answerdesk.ingest.metadata import merge_meta, parse_meta
from answerdesk.types import Document, DocumentMeta, IngestFailure, Section

SUPPORTED_EXTENSIONS = (".md", ".markdown", ".html", ".htm", ".txt", ".text", ".pdf", ".csv", ".jsonl", ".ndjson")
SIDECAR_SUFFIX = ".meta.json"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_NO_META: Mapping[str, str] = MappingProxyType({})
_GLOB_MAGIC = frozenset("*?[")


@dataclass(frozen=True)
class SourceFile:
    """A file to ingest. ``root`` is what the document id is relative to; ``display`` is the path as the
    user would write it (relative to the working directory when under it, POSIX separators)."""

    path: Path
    root: Path
    display: str


# -- discovery ----------------------------------------------------------------------------------------------


def _absolute(path: str | Path) -> Path:
    # normpath rather than resolve(): "docs/../kb" should read as "kb" without following symlinks.
    return Path(os.path.normpath(Path(path).absolute()))


def _display(path: Path, cwd: Path) -> str:
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return path.as_posix()


def _is_candidate(name: str) -> bool:
    return (
        not name.startswith(".")
        and not name.endswith(SIDECAR_SUFFIX)
        and Path(name).suffix.lower() in SUPPORTED_EXTENSIONS
    )


def _walk_folder(folder: Path, failures: list[IngestFailure], cwd: Path) -> list[Path]:
    def unreadable(exc: OSError) -> None:
        where = _display(Path(exc.filename), cwd) if exc.filename else _display(folder, cwd)
        failures.append(IngestFailure(where, f"could not list folder: {exc.strerror or exc}"))

    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder, onerror=unreadable):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(Path(dirpath) / name for name in filenames if _is_candidate(name))
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def _glob_root(pattern: str) -> Path:
    """The deepest directory of ``pattern`` before its first wildcard."""
    parts = Path(pattern).parts
    plain = []
    for part in parts[:-1]:
        if _GLOB_MAGIC.intersection(part):
            break
        plain.append(part)
    return _absolute(Path(*plain)) if plain else _absolute(".")


def _unsupported(suffix: str) -> str:
    shown = f"'{suffix}'" if suffix else "no extension"
    return f"unsupported file type ({shown}); supported: {' '.join(SUPPORTED_EXTENSIONS)}"


def _expand(arg: str, failures: list[IngestFailure], cwd: Path) -> list[tuple[Path, Path]]:
    """``(file, root)`` pairs for one argument; problems go to ``failures``."""
    if _GLOB_MAGIC.intersection(arg):
        root = _glob_root(arg)
        # glob.glob, not Path.glob: the pattern may be absolute and "**" must cross folders.
        matches = [_absolute(m) for m in sorted(glob.glob(arg, recursive=True))]  # noqa: PTH207
        if not matches:
            failures.append(IngestFailure(arg, "no such file or folder matches this pattern"))
            return []
        pairs = [(m, root) for m in matches if m.is_file() and _is_candidate(m.name)]
        for folder in (m for m in matches if m.is_dir()):
            pairs.extend((p, root) for p in _walk_folder(folder, failures, cwd))
        if not pairs:
            failures.append(
                IngestFailure(arg, f"pattern matches no supported files ({' '.join(SUPPORTED_EXTENSIONS)})")
            )
        return pairs
    path = _absolute(arg)
    if path.is_dir():
        files = _walk_folder(path, failures, cwd)
        if not files:
            failures.append(IngestFailure(arg, f"folder has no supported files ({' '.join(SUPPORTED_EXTENSIONS)})"))
        return [(f, path) for f in files]
    if path.is_file():
        if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
            failures.append(IngestFailure(arg, _unsupported(path.suffix.lower())))
            return []
        return [(path, path.parent)]
    reason = "not a regular file or folder" if path.exists() else "no such file or folder"
    failures.append(IngestFailure(arg, reason))
    return []


def discover(paths: Sequence[str]) -> tuple[list[SourceFile], list[IngestFailure]]:
    """Expand files, folders (recursively) and globs into the files to ingest, each once.

    Folders and globs skip hidden files and folders, ``*.meta.json`` sidecars and unsupported types.
    A missing path, a glob that matches nothing, a folder with nothing to ingest or an explicitly named
    file of an unsupported type is returned as an :class:`IngestFailure`. Raises nothing.
    """
    cwd = Path.cwd()
    failures: list[IngestFailure] = []
    sources: list[SourceFile] = []
    seen: set[Path] = set()
    for arg in paths:
        for path, root in _expand(arg, failures, cwd):
            if path not in seen:
                seen.add(path)
                sources.append(SourceFile(path=path, root=root, display=_display(path, cwd)))
    return sources, failures


# -- reading ------------------------------------------------------------------------------------------------


def _size(n: int) -> str:
    return f"{n:,} bytes ({n / 1024 / 1024:.1f} MiB)"


def _read(path: Path, display: str, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise IngestError(display, f"file is {_size(size)}, over the limit of {_size(max_bytes)}")
        if size == 0:
            raise IngestError(display, "file is empty")
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(display, f"could not read file: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:  # it grew between stat() and read
        raise IngestError(display, f"file is {_size(len(data))}, over the limit of {_size(max_bytes)}")
    return data


def decode_utf8(data: bytes, *, where: str) -> str:
    """Decode ``data`` as UTF-8 (a leading BOM is dropped) without replacing anything.

    Raises :class:`IngestError` naming the byte offset when the data is not valid UTF-8 or holds a NUL
    byte (binary data that happens to decode).
    """
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    nul = data.find(b"\x00", start)
    if nul >= 0:
        raise IngestError(where, f"not valid UTF-8 text: NUL byte at offset {nul}; this looks like binary data")
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = start + exc.start
        raise IngestError(
            where,
            f"not valid UTF-8 text: byte 0x{data[offset]:02x} at offset {offset} cannot be decoded; "
            "convert the file to UTF-8",
        ) from exc


def _sidecar(source: SourceFile) -> tuple[str, dict[str, object]] | None:
    path = source.path.with_name(source.path.name + SIDECAR_SUFFIX)
    if not path.is_file():
        return None
    label = source.display + SIDECAR_SUFFIX
    try:
        raw = json.loads(decode_utf8(path.read_bytes(), where=label))
    except OSError as exc:
        raise IngestError(source.display, f"could not read {label}: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise IngestError(
            source.display, f"{label} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(raw, dict):
        raise IngestError(source.display, f"{label} must hold a JSON object, got {type(raw).__name__}")
    return label, raw


def _file_layers(source: SourceFile, cli_meta: Mapping[str, str]) -> list[tuple[str, Mapping[str, object]]]:
    sidecar = _sidecar(source)
    layers: list[tuple[str, Mapping[str, object]]] = [sidecar] if sidecar else []
    if cli_meta:
        layers.append(("--meta", cli_meta))
    return layers


def check_layers(where: str, layers: Sequence[tuple[str, Mapping[str, object]]]) -> None:
    """Validate each layer alone, so that an error says which layer holds the bad value."""
    for label, layer in layers:
        try:
            parse_meta(layer, where=where)
        except IngestError as exc:
            raise IngestError(where, f"in {label}: {exc.reason}") from exc


# -- documents ----------------------------------------------------------------------------------------------


def _json_value(value: object) -> object:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(sorted(value.items()))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def content_sha256(doc_id: str, sections: Sequence[Section], meta: DocumentMeta) -> str:
    """SHA-256 (hex) over a canonical JSON of the id, the sections and the metadata.

    A change to the text, a heading or any metadata field changes it; equal inputs always give the same
    digest. Raises nothing.
    """
    payload = {
        "id": doc_id,
        "sections": [[list(s.heading_path), s.text] for s in sections],
        "meta": {f.name: _json_value(getattr(meta, f.name)) for f in dataclasses.fields(meta)},
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def build_document(
    *,
    doc_id: str,
    source: str,
    sections: Sequence[Section],
    meta: DocumentMeta,
    fallback_title: str,
) -> Document:
    """A :class:`Document` with its title filled in and its hash computed. Raises nothing."""
    if not meta.title:
        meta = dataclasses.replace(meta, title=fallback_title)
    return Document(
        id=doc_id,
        source=source,
        sections=tuple(sections),
        meta=meta,
        sha256=content_sha256(doc_id, sections, meta),
    )


def relative_id(source: SourceFile) -> str:
    """The path of ``source`` relative to its root, with POSIX separators."""
    try:
        return source.path.relative_to(source.root).as_posix()
    except ValueError:
        return source.path.name


def _front_matter(text: str, where: str) -> tuple[dict[str, object], str]:
    handler = YAMLHandler()
    if not handler.detect(text):
        return {}, text
    try:
        fm, content = handler.split(text)
    except ValueError:
        return {}, text  # an opening "---" with no closing one is a thematic break, not front matter
    try:
        loaded = handler.load(fm)
    except yaml.YAMLError as exc:
        raise IngestError(where, f"front matter is not valid YAML: {_yaml_problem(exc)}") from exc
    if loaded is None:
        return {}, content
    if not isinstance(loaded, dict):
        raise IngestError(where, f"front matter must be 'key: value' lines, got a {type(loaded).__name__}")
    return loaded, content


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        # The front matter text starts right after the opening "---" line, which is line 1.
        return f"{exc.problem} (line {exc.problem_mark.line + 1} of the file)"
    return " ".join(str(exc).split())


def _pdf_sections(data: bytes, where: str) -> tuple[str, list[Section]]:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError(where, "PDF is protected by a password; save an unprotected copy first")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata is not None else None
    except IngestError:
        raise
    except Exception as exc:
        # pypdf raises many exception types on damaged files (PdfReadError, ValueError, KeyError, ...).
        raise IngestError(where, f"could not read PDF: {type(exc).__name__}: {exc}") from exc
    sections = plain_to_sections("\n\n".join(pages))
    if not sections:
        raise IngestError(where, "PDF has no extractable text (a scanned PDF needs OCR first)")
    return (title.strip() if isinstance(title, str) else ""), sections


def _sections(source: SourceFile, data: bytes) -> tuple[str, list[Section], dict[str, object]]:
    """``(own title, sections, front matter)`` of a non-ticket file."""
    suffix = source.path.suffix.lower()
    if suffix == ".pdf":
        title, sections = _pdf_sections(data, source.display)
        return title, sections, {}
    text = decode_utf8(data, where=source.display)
    if suffix in (".md", ".markdown"):
        front, body = _front_matter(text, source.display)
        title, sections = markdown_to_sections(body)
        return title, sections, front
    if suffix in (".html", ".htm"):
        title, sections = html_to_sections(text, source=source.display)
        return title, sections, {}
    return "", plain_to_sections(text), {}


def load(
    source: SourceFile, *, cli_meta: Mapping[str, str] = _NO_META, max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[list[Document], list[IngestFailure]]:
    """Read and clean one source into documents; per-row problems of ticket exports come back as failures.

    Markdown, HTML, text and PDF give one document whose id is the front matter, sidecar or ``--meta``
    ``id``, else the path relative to ``source.root``. Ticket exports (.csv, .jsonl, .ndjson) give one
    document per row.

    Raises :class:`IngestError` naming the file when it is over ``max_bytes``, empty, not UTF-8 (text
    formats), an unreadable PDF, has malformed front matter or sidecar, carries a bad metadata value, or
    has no text left after cleaning.
    """
    data = _read(source.path, source.display, max_bytes)
    layers = _file_layers(source, cli_meta)
    if source.path.suffix.lower() in (".csv", ".jsonl", ".ndjson"):
        text = decode_utf8(data, where=source.display)
        from answerdesk.ingest.tickets import load_tickets  # tickets build on this module's helpers

        return load_tickets(source, text, layers)
    title, sections, front = _sections(source, data)
    if not sections:
        raise IngestError(source.display, "no text left after cleaning")
    all_layers = [("front matter", front), *layers]
    check_layers(source.display, all_layers)
    explicit_id, meta = parse_meta(merge_meta(*(layer for _, layer in all_layers)), where=source.display)
    document = build_document(
        doc_id=explicit_id or relative_id(source),
        source=source.display,
        sections=sections,
        meta=meta,
        fallback_title=title or source.path.stem,
    )
    return [document], []
