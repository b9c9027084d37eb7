"""The prompt registry: versioned template files, compiled and checked when they load, chosen by version or label.

A template is ``<name>@v<N>.md``: YAML front matter (``description``, ``variables``), then a Jinja2 body whose
first line that is exactly ``---user---`` splits it into the system part (before) and the user part (after).
The two parts are compiled separately, so nothing a variable renders can move the split. Bodies render in an
immutable sandbox with ``StrictUndefined``: a template cannot reach Python internals or change the values it
is given, and a name it does not know is an error rather than an empty string.

Loading checks that the variables the body uses and the ``variables`` the front matter declares are the same
set, so a template that would fail mid-request fails when it loads instead.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, UndefinedError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from answerdesk.errors import ConfigError, InputError, NotFound
from answerdesk.prompts.labels import LabelEvent, LabelStore
from answerdesk.types import Message

#: The templates that ship in the package.
TEMPLATES_DIR = Path(__file__).parent / "templates"
#: The line of a template body that ends the system part and starts the user part.
USER_MARKER = "---user---"
#: The label served when no version or label is asked for; while it is unset, the highest version is served.
DEFAULT_LABEL = "production"

_FILE_NAME = re.compile(r"([a-z][a-z0-9_-]*)@v([1-9][0-9]*)\.md")
_FRONT_MATTER_KEYS = ("description", "variables")
# The tags the templates use to frame untrusted text; text that contains them could otherwise close a block.
_STRUCTURAL_TAG = re.compile(r"<(/?)(source|question|conversation|turn)\b", re.IGNORECASE)


def inert(value: object) -> str:
    """Template filter for untrusted text: the framing tags it contains no longer read as tags."""
    return _STRUCTURAL_TAG.sub(r"&lt;\1\2", str(value))


def attribute(value: object) -> str:
    """Template filter for a value inside ``attr="…"``: :func:`inert`, on one line, without double quotes."""
    return " ".join(inert(value).replace('"', "'").split())


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """A rendered template. ``system`` is the same for every request that shares the template and its fixed
    variables, so a local model can reuse its cache for it; everything per request is in ``user``."""

    system: str
    user: str

    def messages(self) -> tuple[Message, Message]:
        return Message("system", self.system), Message("user", self.user)


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """One compiled template version. ``sha256`` is the hash of the file's bytes; ``text`` is the file."""

    name: str
    version: int
    sha256: str
    description: str
    variables: tuple[str, ...]
    path: Path
    text: str = field(repr=False)
    _system: Template = field(repr=False, compare=False)
    _user: Template = field(repr=False, compare=False)

    @property
    def ref(self) -> str:
        """``name@vN``, how logs and answers refer to this version."""
        return f"{self.name}@v{self.version}"

    def render(self, **variables: object) -> RenderedPrompt:
        """Render both parts.

        Raises :class:`InputError` when a declared variable is missing, an undeclared one is given, or a value
        lacks what the template reads from it; :class:`ConfigError` when the template tries an unsafe operation.
        """
        missing = [name for name in self.variables if name not in variables]
        if missing:
            raise InputError(f"prompt {self.ref} needs variable(s) {', '.join(missing)}")
        unknown = sorted(set(variables) - set(self.variables))
        if unknown:
            raise InputError(
                f"prompt {self.ref} does not take variable(s) {', '.join(unknown)}; "
                f"it takes {', '.join(self.variables)}"
            )
        try:
            return RenderedPrompt(self._system.render(variables).strip("\n"), self._user.render(variables).strip("\n"))
        except SecurityError as exc:
            raise ConfigError(f"{self.path}: template tried an unsafe operation: {exc}") from exc
        except UndefinedError as exc:
            raise InputError(f"prompt {self.ref}: a variable lacks what the template reads: {exc}") from exc
        except TemplateError as exc:
            raise ConfigError(f"{self.path}: template failed to render: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise InputError(f"prompt {self.ref}: a variable has the wrong shape: {exc}") from exc


class PromptRegistry:
    """Finds ``<name>@v<N>.md`` files in ``templates_dir`` and keeps labels in ``store``.

    Files are read on every call (they are small) and recompiled only when their hash changes. Every method
    that names a prompt, version or label that does not exist raises :class:`NotFound` listing the known ones.
    """

    def __init__(self, templates_dir: Path | str = TEMPLATES_DIR, *, store: LabelStore | None = None) -> None:
        self.templates_dir = Path(templates_dir)
        self.store = store
        self._env = ImmutableSandboxedEnvironment(
            undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
        )
        self._env.filters["inert"] = inert
        self._env.filters["attribute"] = attribute
        self._compiled: dict[Path, PromptTemplate] = {}

    def names(self) -> list[str]:
        return sorted(self._catalog())

    def versions(self, name: str) -> list[int]:
        return sorted(self._files(name))

    def load(self, name: str, version: int) -> PromptTemplate:
        """The compiled template ``name@v<version>``; :class:`ConfigError` (naming the file) when it is invalid."""
        files = self._files(name)
        path = files.get(version)
        if path is None:
            raise NotFound(f"prompt {name!r} has no version {version}; known versions: {_join(sorted(files))}")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read template: {exc}") from exc
        sha256 = hashlib.sha256(data).hexdigest()
        cached = self._compiled.get(path)
        if cached is not None and cached.sha256 == sha256:
            return cached
        template = compile_template(self._env, path, name, version, data, sha256)
        self._compiled[path] = template
        return template

    def resolve(self, name: str, *, version: int | None = None, label: str | None = None) -> PromptTemplate:
        """The version to serve: ``version`` if given, else the one ``label`` points to, else the one
        ``production`` points to, else the highest.

        Asking for ``production`` while it is unset serves the highest version, as asking for nothing does; any
        other unset label raises :class:`NotFound`. A label whose file changed since the label was set raises
        :class:`ConfigError`: a version must not change under a label.
        """
        if version is not None:
            return self.load(name, version)
        versions = self.versions(name)
        entries = self.store.entries(name) if self.store is not None else {}
        wanted = label or DEFAULT_LABEL
        entry = entries.get(wanted)
        if entry is None:
            if wanted != DEFAULT_LABEL:
                raise NotFound(f"prompt {name!r} has no label {wanted!r}; known labels: {_join(sorted(entries))}")
            return self.load(name, versions[-1])
        if entry.version not in versions:
            raise ConfigError(
                f"label {wanted!r} of prompt {name!r} points to version {entry.version}, which no longer exists; "
                f"known versions: {_join(versions)}"
            )
        template = self.load(name, entry.version)
        if template.sha256 != entry.sha256:
            raise ConfigError(
                f"{template.path} changed since label {wanted!r} was set (sha256 then {entry.sha256[:12]}, "
                f"now {template.sha256[:12]}); add a new version, or set the label again to accept the change"
            )
        return template

    def labels(self, name: str) -> dict[str, int]:
        """The labels of prompt ``name`` and the versions they point to (empty without a label store)."""
        self._files(name)
        return self.store.labels(name) if self.store is not None else {}

    def set_label(self, name: str, label: str, version: int, *, actor: str) -> LabelEvent:
        """Point ``label`` at an existing, valid version and record who moved it; returns the move."""
        template = self.load(name, version)
        if self.store is None:
            raise ConfigError("this prompt registry has no label store, so labels cannot be set")
        return self.store.set(name, label, version, template.sha256, actor)

    def history(self, name: str) -> list[LabelEvent]:
        """Every recorded label move of ``name``, oldest first (empty without a label store)."""
        self._files(name)
        return self.store.history(name) if self.store is not None else []

    def diff(self, name: str, old: int, new: int) -> str:
        """Unified diff of the files of two versions of ``name``."""
        a, b = self.load(name, old), self.load(name, new)
        lines = difflib.unified_diff(
            _lines(a.text), _lines(b.text), fromfile=a.path.name, tofile=b.path.name, lineterm="\n"
        )
        return "".join(lines)

    def check(self) -> list[PromptTemplate]:
        """Load every version of every template, so a broken one fails at start-up, not mid-request."""
        return [self.load(name, v) for name in self.names() for v in self.versions(name)]

    def _files(self, name: str) -> dict[int, Path]:
        catalog = self._catalog()
        if name not in catalog:
            raise NotFound(f"no prompt named {name!r}; known prompts: {_join(sorted(catalog))}")
        return catalog[name]

    def _catalog(self) -> dict[str, dict[int, Path]]:
        if not self.templates_dir.is_dir():
            raise ConfigError(f"{self.templates_dir}: prompt templates folder not found")
        catalog: dict[str, dict[int, Path]] = {}
        for path in sorted(self.templates_dir.glob("*.md")):
            match = _FILE_NAME.fullmatch(path.name)
            if match is None:
                raise ConfigError(
                    f"{path}: template files must be named <name>@v<N>.md (lowercase name, N from 1, no leading 0)"
                )
            catalog.setdefault(match.group(1), {})[int(match.group(2))] = path
        return catalog


def compile_template(
    env: ImmutableSandboxedEnvironment, path: Path, name: str, version: int, data: bytes, sha256: str
) -> PromptTemplate:
    """Parse front matter and body, check variables and attribute access, compile both parts."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: template is not UTF-8: {exc}") from exc
    front, body, body_line = _split_front_matter(path, text)
    description, declared = _front_matter(path, front)
    parts = _split_body(path, body, body_line)
    used: set[str] = set()
    compiled: list[Template] = []
    for source, first_line in parts:
        try:
            ast = env.parse(source)
            used |= meta.find_undeclared_variables(ast)
            _reject_private_access(path, ast, first_line)
            compiled.append(env.from_string(ast))
        except TemplateSyntaxError as exc:
            line = first_line + (exc.lineno or 1) - 1
            raise ConfigError(f"{path}:{line}: template syntax error: {exc.message}") from exc
    undeclared = sorted(used - set(declared))
    if undeclared:
        raise ConfigError(
            f"{path}: template uses undeclared variable(s) {', '.join(undeclared)}; "
            "add them to 'variables' in the front matter"
        )
    unused = [v for v in declared if v not in used]
    if unused:
        raise ConfigError(f"{path}: declared variable(s) {', '.join(unused)} are not used by the template")
    return PromptTemplate(
        name, version, sha256, description, tuple(declared), path, text, _system=compiled[0], _user=compiled[1]
    )


def _split_front_matter(path: Path, text: str) -> tuple[str, str, int]:
    """(front matter, body, file line number of the body's first line)."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines[0].strip() != "---":
        raise ConfigError(f"{path}: a template starts with '---' and YAML front matter")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise ConfigError(f"{path}: front matter is not closed by a '---' line")
    return "\n".join(lines[1:end]), "\n".join(lines[end + 1 :]), end + 2


def _front_matter(path: Path, front: str) -> tuple[str, list[str]]:
    try:
        loaded: Any = yaml.safe_load(front)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: front matter is not valid YAML: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"{path}: front matter must be a mapping with {_join(_FRONT_MATTER_KEYS)}")
    unknown = sorted(str(k) for k in loaded if k not in _FRONT_MATTER_KEYS)
    if unknown:
        raise ConfigError(
            f"{path}: unknown front matter key(s) {', '.join(unknown)} (known keys: {_join(_FRONT_MATTER_KEYS)})"
        )
    description, variables = loaded.get("description"), loaded.get("variables")
    if not isinstance(description, str) or not description.strip():
        raise ConfigError(f"{path}: front matter needs a 'description' (text)")
    if not isinstance(variables, list) or not all(isinstance(v, str) and v.isidentifier() for v in variables):
        raise ConfigError(f"{path}: front matter needs 'variables', a list of names, e.g. [question, sources]")
    duplicates = sorted({v for v in variables if variables.count(v) > 1})
    if duplicates:
        raise ConfigError(f"{path}: variable(s) {', '.join(duplicates)} declared more than once")
    return description.strip(), list(variables)


def _split_body(path: Path, body: str, body_line: int) -> list[tuple[str, int]]:
    """The system and user sources, each with the file line number it starts on."""
    lines = body.split("\n")
    markers = [i for i, line in enumerate(lines) if line.rstrip() == USER_MARKER]
    if len(markers) != 1:
        raise ConfigError(
            f"{path}: the body needs exactly one '{USER_MARKER}' line between the system and the user part, "
            f"found {len(markers)}"
        )
    cut = markers[0]
    return [("\n".join(lines[:cut]), body_line), ("\n".join(lines[cut + 1 :]), body_line + cut + 1)]


def _reject_private_access(path: Path, ast: nodes.Template, first_line: int) -> None:
    # The sandbox blocks these at render time too; refusing them here makes the template fail when it loads.
    for node in ast.find_all((nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            key: object = node.attr
        else:
            assert isinstance(node, nodes.Getitem)
            key = node.arg.value if isinstance(node.arg, nodes.Const) else None
        if isinstance(key, str) and key.startswith("_"):
            line = first_line + node.lineno - 1
            raise ConfigError(f"{path}:{line}: templates may not read private attribute {key!r}")


def _lines(text: str) -> list[str]:
    return [line if line.endswith("\n") else line + "\n" for line in text.splitlines(keepends=True)]


def _join(values: Any) -> str:
    items = [str(v) for v in values]
    return ", ".join(items) if items else "(none)"
