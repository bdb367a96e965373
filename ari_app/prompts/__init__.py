"""Prompts: the catalog of every phrase the system says, and its renderer.

Code plays a prompt by name with `media(name)`; the texts live in
`catalog.toml`, and `render_catalog` turns them into sound files at build time.
"""

from ari_app.prompts.catalog import (
    SOUND_DIR,
    Catalog,
    CatalogError,
    MissingValue,
    Prompt,
    PromptError,
    UnknownPrompt,
    UnsupportedLanguage,
    load_catalog,
    media,
    minutes_prompt,
)

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ari_app.prompts.render import RenderError, RenderReport, render_catalog

_RENDER_NAMES = frozenset({"RenderError", "RenderReport", "render_catalog"})


def __getattr__(name: str) -> Any:
    # The renderer is imported on first use only, so that the app does not load
    # it and `python -m ari_app.prompts.render` does not find it already imported.
    if name in _RENDER_NAMES:
        from ari_app.prompts import render

        return getattr(render, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SOUND_DIR",
    "Catalog",
    "CatalogError",
    "MissingValue",
    "Prompt",
    "PromptError",
    "RenderError",
    "RenderReport",
    "UnknownPrompt",
    "UnsupportedLanguage",
    "load_catalog",
    "media",
    "minutes_prompt",
    "render_catalog",
]
