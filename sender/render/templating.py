"""The Jinja2 environment: strict, autoescaped, translated, recipient-safe.

One environment per language, each with gettext callables that note every
string missing from that language's catalogue, so a preview can say which
strings fell back to English. Catalogues are read from the committed `.po`
sources with Babel at load time (compiled `.mo` files are not kept in git).

Recipient fields exist only as substitution tags when a variant renders, so
a template that branches, filters or compares on them would silently do the
wrong thing for everyone. `recipient_problems` walks each template's syntax
tree and names the template and line of any such use.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po
from jinja2 import nodes
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape

from sender.core.errors import TemplateProblem
from sender.core.languages import FALLBACK_LANGUAGE, known_language
from sender.render.merge import FIELDS

SOURCE_LANGUAGE = FALLBACK_LANGUAGE  # msgids are English: English needs no catalogue
DEFAULT_TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


@dataclass(frozen=True)
class Problem:
    """Something wrong with a template, a case or a translation."""

    template: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.template if self.line is None else f"{self.template}, line {self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: tuple[str, ...]  # msgids that had no translation and fell back to English


class _Gettext:
    """A language's translations, noting each miss while a render runs."""

    def __init__(self, language: str, strings: Mapping[str, str]) -> None:
        self.language = language
        self._strings = strings
        self.missing: list[str] = []

    def gettext(self, message: str) -> str:
        found = self._strings.get(message)
        if found is None:
            if self.language != SOURCE_LANGUAGE:
                self.missing.append(message)
            return message
        return found

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self.gettext(singular if n == 1 else plural)


class Templates:
    """The templates under one directory, in every language it has a catalogue for.

    `sources` are a campaign's own templates by file name (sender.render.kinds):
    they are found before the directory's, and extend or include its shared
    ones (layout, blocks) like any shipped template.
    """

    def __init__(
        self, directory: Path | None = None, sources: Mapping[str, str] | None = None
    ) -> None:
        self.directory = (directory or DEFAULT_TEMPLATES_DIR).resolve()
        if not self.directory.is_dir():
            raise TemplateProblem(f"templates directory {self.directory} does not exist")
        self._loader: jinja2.BaseLoader = jinja2.FileSystemLoader(str(self.directory))
        if sources:
            self._loader = jinja2.ChoiceLoader([jinja2.DictLoader(dict(sources)), self._loader])
        self._catalogues = load_catalogues(self.directory / "locales")
        self._environments: dict[str, tuple[jinja2.Environment, _Gettext]] = {}
        self._checked: dict[str, tuple[Problem, ...]] = {}
        self._lock = threading.RLock()

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(sorted({SOURCE_LANGUAGE, *self._catalogues}))

    def template_names(self) -> list[str]:
        """The email templates: top-level files (sub-folders hold the web app's pages)."""
        return sorted(
            name
            for name in self._loader.list_templates()
            if "/" not in name and name.endswith((".html", ".txt"))
        )

    def render(
        self, language: str, name: str, context: Mapping[str, Any], block: str | None = None
    ) -> Rendered:
        """Render a template (or one of its blocks); TemplateProblem names template and line."""
        self.require_clean(name)
        environment, gettext = self._environment(language)
        with self._lock:
            gettext.missing.clear()
            try:
                template = environment.get_template(name)
                if block is None:
                    text = template.render(context)
                else:
                    if block not in template.blocks:
                        raise TemplateProblem(f"{name}: has no block '{block}'")
                    text = "".join(template.blocks[block](template.new_context(dict(context))))
            except TemplateProblem:
                raise
            except jinja2.TemplateSyntaxError as error:
                raise TemplateProblem(str(_syntax_problem(error))) from error
            except jinja2.TemplateNotFound as error:
                raise TemplateProblem(f"template {error.name} not found") from error
            except Exception as error:  # wrapped with the template line it came from
                raise TemplateProblem(str(self._runtime_problem(name, error))) from error
            return Rendered(text, tuple(dict.fromkeys(gettext.missing)))

    def translate(self, language: str, message: str) -> Rendered:
        strings = self._catalogues.get(language, {})
        if message in strings:
            return Rendered(strings[message], ())
        missing = () if language == SOURCE_LANGUAGE else (message,)
        return Rendered(message, missing)

    def require_clean(self, name: str) -> None:
        problems = self.problems(name)
        if problems:
            raise TemplateProblem("; ".join(str(p) for p in problems))

    def problems(self, name: str) -> tuple[Problem, ...]:
        """Syntax errors and recipient misuse in `name` and every template it extends."""
        with self._lock:
            if name not in self._checked:
                self._checked[name] = tuple(self._check(name, seen=set()))
            return self._checked[name]

    def _check(self, name: str, seen: set[str]) -> Iterator[Problem]:
        if name in seen:
            return
        seen.add(name)
        environment, _ = self._environment(SOURCE_LANGUAGE)
        try:
            source, _, _ = self._loader.get_source(environment, name)
            tree = environment.parse(source, name=name)
        except jinja2.TemplateSyntaxError as error:
            yield _syntax_problem(error)
            return
        except jinja2.TemplateNotFound:
            yield Problem(name, None, "template not found")
            return
        yield from recipient_problems(tree, name)
        for parent in tree.find_all((nodes.Extends, nodes.Include, nodes.Import)):
            target = getattr(parent, "template", None)
            if isinstance(target, nodes.Const):
                yield from self._check(str(target.value), seen)

    def _environment(self, language: str) -> tuple[jinja2.Environment, _Gettext]:
        with self._lock:
            if language not in self._environments:
                self._environments[language] = self._build(language)
            return self._environments[language]

    def _build(self, language: str) -> tuple[jinja2.Environment, _Gettext]:
        # Sandboxed: a campaign folder's templates are data, stored and rendered by
        # workers, so they may print values but not reach Python internals.
        environment = SandboxedEnvironment(
            loader=self._loader,
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html",), default_for_string=True, default=False
            ),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        environment.filters["line_breaks"] = line_breaks
        gettext = _Gettext(language, self._catalogues.get(language, {}))
        environment.install_gettext_callables(  # type: ignore[attr-defined]
            gettext.gettext, gettext.ngettext, newstyle=True
        )
        return environment, gettext

    def _runtime_problem(self, name: str, error: Exception) -> Problem:
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            path = Path(frame.filename)
            if path.is_absolute() and path.is_relative_to(self.directory):
                relative = path.relative_to(self.directory).as_posix()
                return Problem(relative, frame.lineno, _describe(error))
        return Problem(name, None, _describe(error))


def line_breaks(value: str) -> Markup:
    """Escape a text and keep its line breaks as <br> (letters are typed with newlines)."""
    return Markup("<br>\n").join(escape(line) for line in str(value).split("\n"))


def load_catalogues(locales: Path) -> dict[str, dict[str, str]]:
    """{language: {msgid: msgstr}} from locales/<lang>/LC_MESSAGES/messages.po.

    A language is a folder: any code Babel knows, in its normal form (`de`,
    `fa`, `pt_BR`, as gettext names them); a folder named otherwise is refused
    rather than silently never used.
    """
    catalogues: dict[str, dict[str, str]] = {}
    if not locales.is_dir():
        return catalogues
    for po in sorted(locales.glob("*/LC_MESSAGES/messages.po")):
        folder = po.parent.parent.name
        language = known_language(folder)
        if language is None:
            raise TemplateProblem(
                f"{po}: folder {folder!r} is not a language code Babel knows (e.g. de, fa, pt_BR)"
            )
        if language != folder:
            raise TemplateProblem(f"{po}: name the folder {language!r}, not {folder!r}")
        catalogues[language] = _strings(_read(po, language))
    return catalogues


def _read(po: Path, language: str) -> Catalog:
    try:
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=language, abort_invalid=True)
    except Exception as error:  # babel raises PoFileError and friends
        raise TemplateProblem(f"{po}: cannot read catalogue: {error}") from error
    for message, errors in catalog.check():
        if errors:
            line = message.lineno
            raise TemplateProblem(f"{po}, line {line}: {'; '.join(map(str, errors))}")
    return catalog


def _strings(catalog: Catalog) -> dict[str, str]:
    # Untranslated and fuzzy entries are left out: they fall back to English.
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and isinstance(message.id, str) and message.string and not message.fuzzy
    }


# Where a recipient tag may not go: it is text like "-first_name-" while the
# variant renders, so any decision made on it is made wrongly for everyone.
_CONTROL_CHILDREN: dict[type[nodes.Node], dict[str, str]] = {
    nodes.If: {"test": "an if condition"},
    nodes.For: {"iter": "a for loop", "test": "a for loop condition"},
    nodes.CondExpr: {"test": "an inline if condition"},
    nodes.With: {"values": "a with block"},
    nodes.Call: {"node": "a method call"},
    nodes.Getattr: {"node": "attribute access"},
    nodes.Getitem: {"node": "indexing"},
}
_CONTROL_NODES: dict[type[nodes.Node], str] = {
    nodes.Test: "a test",
    nodes.Filter: "a filter",
    nodes.FilterBlock: "a filter block",
    nodes.Compare: "a comparison",
    nodes.And: "boolean logic",
    nodes.Or: "boolean logic",
    nodes.Not: "boolean logic",
    nodes.BinExpr: "arithmetic",
    nodes.Assign: "an assignment",
    nodes.AssignBlock: "an assignment",
    nodes.Slice: "slicing",
}


def recipient_problems(tree: nodes.Node, template: str) -> list[Problem]:
    problems: list[Problem] = []
    _walk(tree, None, template, problems)
    return problems


def _walk(node: nodes.Node, why: str | None, template: str, out: list[Problem]) -> None:
    if _is_recipient_field(node):
        assert isinstance(node, nodes.Getattr)
        if node.attr not in {f.value for f in FIELDS}:
            out.append(Problem(template, node.lineno, f"unknown recipient field '{node.attr}'"))
        elif why is not None:
            out.append(
                Problem(
                    template,
                    node.lineno,
                    f"recipient.{node.attr} is used in {why}; recipient fields are "
                    "substitution tags and may only be printed",
                )
            )
        return
    if isinstance(node, nodes.Name) and node.name == "recipient":
        out.append(Problem(template, node.lineno, "use recipient.<field>, not recipient"))
        return
    node_why = next((w for t, w in _CONTROL_NODES.items() if isinstance(node, t)), None)
    child_whys = next((c for t, c in _CONTROL_CHILDREN.items() if isinstance(node, t)), {})
    for field, value in node.iter_fields():
        children = value if isinstance(value, list) else [value]
        for child in children:
            if isinstance(child, nodes.Node):
                _walk(child, why or node_why or child_whys.get(field), template, out)


def _is_recipient_field(node: nodes.Node) -> bool:
    return (
        isinstance(node, nodes.Getattr)
        and isinstance(node.node, nodes.Name)
        and node.node.name == "recipient"
    )


def _syntax_problem(error: jinja2.TemplateSyntaxError) -> Problem:
    return Problem(error.name or error.filename or "<template>", error.lineno, error.message or "")


def _describe(error: Exception) -> str:
    if isinstance(error, jinja2.UndefinedError):
        return f"undefined value: {error.message}"
    return f"{type(error).__name__}: {error}"
