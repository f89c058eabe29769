"""Exit 0 when every requirement of ``.[test]`` (pyproject.toml) is installed.

scripts/test runs this before ``pip install -e ".[test]"`` and skips pip when it
passes: the check takes a fraction of a second where pip's resolver takes many.
Any doubt (a missing or too old distribution, this project not installed at all,
``packaging`` itself missing) exits non-zero, and pip does the real work.
"""

from __future__ import annotations

import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name


def missing(project: dict[str, object]) -> list[str]:
    """Requirements of the project's ``test`` extra that the environment lacks."""
    name = canonicalize_name(str(project["name"]))
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})  # type: ignore[assignment]
    todo = [Requirement(r) for r in project.get("dependencies", [])]  # type: ignore[attr-defined]
    todo += [Requirement(f"{name}[test]")]
    seen: set[str] = set()
    lacking: list[str] = []
    while todo:
        req = todo.pop()
        key = str(req)
        if key in seen or (req.marker is not None and not req.marker.evaluate()):
            continue
        seen.add(key)
        if canonicalize_name(req.name) == name:  # the project itself: its extras from pyproject
            try:
                metadata.version(req.name)
            except metadata.PackageNotFoundError:
                lacking.append(key)
            todo += [Requirement(r) for extra in req.extras for r in extras.get(extra, [])]
            continue
        try:
            dist = metadata.distribution(req.name)
        except metadata.PackageNotFoundError:
            lacking.append(key)
            continue
        if not req.specifier.contains(dist.version, prereleases=True):
            lacking.append(f"{key} (have {dist.version})")
            continue
        for extra in req.extras:  # e.g. python-socketio[asyncio_client]
            for sub in dist.requires or []:
                sub_req = Requirement(sub)
                if sub_req.marker is not None and sub_req.marker.evaluate({"extra": extra}):
                    sub_req.marker = None
                    todo.append(sub_req)
    return lacking


def main() -> int:
    pyproject = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    lacking = missing(pyproject["project"])
    for req in lacking:
        print(f"not installed: {req}", file=sys.stderr)
    return 1 if lacking else 0


if __name__ == "__main__":
    sys.exit(main())
