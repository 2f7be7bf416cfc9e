"""The dashboard's ES modules link up: every relative import names a file that exists and a name
that file exports. There is no build step to catch a broken import, and a browser reports one only
when the page loads (the whole dashboard then shows nothing)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
MODULES = sorted((FRONTEND / "js").rglob("*.js"))

_IMPORT = re.compile(r"^import\s+(?:\{([^}]*)\}\s+from\s+)?'([^']+)';", re.MULTILINE)
_EXPORT = re.compile(r"^export\s+(?:async\s+)?(?:function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)", re.MULTILINE)
_EXPORT_LIST = re.compile(r"^export\s*\{([^}]*)\}", re.MULTILINE)


def exported(module: Path) -> set[str]:
    text = module.read_text(encoding="utf-8")
    names = set(_EXPORT.findall(text))
    for group in _EXPORT_LIST.findall(text):
        names |= {part.split(" as ")[-1].strip() for part in group.split(",") if part.strip()}
    return names


def imports(module: Path) -> list[tuple[Path, list[str]]]:
    """The relative imports of a module: the file each names and the names it takes from it."""
    found = []
    for names, source in _IMPORT.findall(module.read_text(encoding="utf-8")):
        if source.startswith("."):
            taken = [part.split(" as ")[0].strip() for part in names.split(",") if part.strip()]
            found.append(((module.parent / source).resolve(), taken))
    return found


def test_there_are_modules_to_check() -> None:
    assert FRONTEND / "js" / "app.js" in MODULES
    assert 'src="/js/app.js"' in (FRONTEND / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(FRONTEND)))
def test_every_import_resolves_to_an_export(module: Path) -> None:
    for target, names in imports(module):
        assert target.is_file(), f"{module.name} imports {target}, which does not exist"
        missing = set(names) - exported(target)
        assert not missing, f"{module.name} imports {sorted(missing)} from {target.name}, which does not export them"
