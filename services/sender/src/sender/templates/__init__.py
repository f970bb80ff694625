"""The shipped SMS texts: one TOML file per language; a new language is a new file."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources

from ..domain.messages import LanguageTemplates, TemplateBook


@functools.cache
def load_templates() -> TemplateBook:
    """Every `<lang>.toml` in this package, checked for missing texts and placeholders."""
    languages: dict[str, LanguageTemplates] = {}
    for entry in resources.files(__package__).iterdir():
        if entry.name.endswith(".toml"):
            language = entry.name.removesuffix(".toml")
            data = tomllib.loads(entry.read_text(encoding="utf-8"))
            languages[language] = LanguageTemplates.from_mapping(language, data)
    return TemplateBook(languages)
