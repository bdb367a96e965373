"""Put the catalog's prompts where an Asterisk looks for them: `<sounds>/<lang>/etiquette/`.

Used by the sandbox and docker builds and by admins (`ari-etiquette prompts render`). Files an
admin dropped in under the same names (studio recordings) are kept, never overwritten.
`names` adds the policy's own words (a directory entry's name) as prompts of their own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from ari_app.prompts.catalog import load_catalog
from ari_app.prompts.render import render_catalog

__all__ = ["install_prompts"]


def install_prompts(sounds_dir: Path, values: Mapping[str, str], languages: Sequence[str],
                    names: Mapping[str, str] | None = None):
    catalog = load_catalog().with_names(names or {})
    return render_catalog(catalog, Path(sounds_dir), values, languages)
