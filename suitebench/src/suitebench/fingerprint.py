"""What code a run measures, as a fingerprint that a resumed run must match.

Every repetition is a fresh process that imports the working tree, so "the same code" means the
same files on disk, not the same commit. A fingerprint records, for each source tree the caller
names (the suite, the packages it imports, the engine's own plugin that runs in every child):

* inside a git work tree: HEAD, and the content hash of every file under the tree that differs
  from HEAD (modified, staged, deleted, or untracked and not ignored), so a clean tree costs one
  `git status` and an edit is named by its path;
* outside git: the content hash of every file (caches and hidden directories excepted);

and beside the trees the installed distributions (name and version, from the `*.dist-info` and
`*.egg-info` names in site-packages: a directory listing, not a metadata scan) and the timing
plugin's arguments. `code_hash` condenses the whole fingerprint; the runner stores the fingerprint
when it plans a run, refuses a resume whose fingerprint differs (`fingerprint_changes` names
what changed), and records the hash of every repetition.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import site
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Outside git, not part of the code: bytecode, and (see _plain_files) __pycache__ and hidden
# directories (.git, .pytest_cache, .suitebench, a virtual environment kept as .venv).
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_DELETED = "deleted"
_HASH_CHARS = 16
# At most this many changes are named in a message; the rest are counted.
_NAMED_CHANGES = 5


@dataclass(frozen=True)
class SourceTrees:
    """The trees a fingerprint covers, resolved once per run: git repositories (top directory ->
    the pathspecs inside it) and plain directories or files; `exclude` (the runs directory, which
    the run itself writes into) is left out of both."""

    repositories: Mapping[str, tuple[str, ...]]
    plain: tuple[str, ...]
    exclude: tuple[str, ...] = ()


def _git(args: Sequence[str], *, cwd: Path) -> subprocess.CompletedProcess | None:
    try:
        # --no-optional-locks: `git status` would otherwise refresh the index under a lock, which
        # another git command running at the same moment (an editor, a commit) would trip over.
        completed = subprocess.run(
            ["git", "--no-optional-locks", *args], cwd=cwd, capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return completed if completed.returncode == 0 else None


def _git_top(directory: Path) -> Path | None:
    completed = _git(["rev-parse", "--show-toplevel"], cwd=directory)
    if completed is None:
        return None
    return Path(completed.stdout.decode().strip()).resolve()


def resolve_trees(paths: Iterable[Path | str], *, exclude: Iterable[Path | str] = ()) -> SourceTrees:
    """Group `paths` by git repository (one `git status` per repository later); paths outside
    git (or where git is missing or refuses the directory) are hashed file by file."""
    repositories: dict[str, list[str]] = {}
    plain: list[str] = []
    tops: dict[Path, Path | None] = {}
    for given in dict.fromkeys(Path(p).resolve() for p in paths):
        directory = given if given.is_dir() else given.parent
        if directory not in tops:
            tops[directory] = _git_top(directory) if directory.exists() else None
        top = tops[directory]
        if top is None:
            plain.append(str(given))
        else:
            relative = given.relative_to(top).as_posix()
            repositories.setdefault(str(top), []).append("." if relative == "." else relative)
    return SourceTrees(
        repositories={top: tuple(specs) for top, specs in repositories.items()},
        plain=tuple(plain),
        exclude=tuple(str(Path(e).resolve()) for e in exclude),
    )


def _excluded(path: Path, exclude: Sequence[str]) -> bool:
    return any(path == Path(e) or Path(e) in path.parents for e in exclude)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _content_hash(path: Path) -> str:
    try:
        return _file_sha256(path) if path.is_file() else _DELETED
    except OSError:
        # Unreadable or gone between listing and reading: recorded as such, so it still counts.
        return "unreadable"


def _status_paths(output: bytes) -> tuple[str | None, list[str]]:
    """HEAD and the changed paths from `git status --porcelain=v2 --branch -z` output."""
    commit: str | None = None
    paths: list[str] = []
    fields = output.decode("utf-8", errors="surrogateescape").split("\0")
    index = 0
    while index < len(fields):
        entry = fields[index]
        index += 1
        if entry.startswith("# branch.oid "):
            oid = entry.removeprefix("# branch.oid ").strip()
            commit = None if oid == "(initial)" else oid
        elif entry.startswith("1 "):
            paths.append(entry.split(" ", 8)[8])
        elif entry.startswith("2 "):
            paths.append(entry.split(" ", 9)[9])
            index += 1  # a rename's original path follows as its own field
        elif entry.startswith("u "):
            paths.append(entry.split(" ", 10)[10])
        elif entry.startswith("? "):
            paths.append(entry[2:])
    return commit, paths


def _repository_state(top: str, pathspecs: Sequence[str], exclude: Sequence[str]) -> dict[str, Any]:
    completed = _git(
        ["status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all", "--", *pathspecs], cwd=Path(top)
    )
    if completed is None:
        return {"commit": None, "paths": list(pathspecs), "error": "git status failed", "changed": {}}
    commit, changed_paths = _status_paths(completed.stdout)
    changed = {}
    for relative in sorted(set(changed_paths)):
        path = Path(top) / relative
        if not _excluded(path, exclude):
            changed[relative] = _content_hash(path)
    return {"commit": commit, "paths": list(pathspecs), "changed": changed}


def _plain_files(root: Path, exclude: Sequence[str]) -> dict[str, str]:
    if root.is_file():
        return {root.name: _content_hash(root)}
    files: dict[str, str] = {}
    for directory, subdirectories, names in os.walk(root):
        here = Path(directory)
        subdirectories[:] = sorted(
            d
            for d in subdirectories
            if d != "__pycache__" and not d.startswith(".") and not _excluded(here / d, exclude)
        )
        for name in sorted(names):
            if not name.endswith(_SKIPPED_SUFFIXES):
                files[(here / name).relative_to(root).as_posix()] = _content_hash(here / name)
    return files


def tree_state(trees: SourceTrees) -> dict[str, Any]:
    """{tree: {"commit", "changed"}} for repositories, {tree: {"commit": None, "files"}} for the rest."""
    state: dict[str, Any] = {}
    for top, pathspecs in trees.repositories.items():
        state[top] = _repository_state(top, pathspecs, trees.exclude)
    for path in trees.plain:
        root = Path(path)
        state[path] = {"commit": None, "files": _plain_files(root, trees.exclude) if root.exists() else {}}
    return state


_DIST_NAME = re.compile(r"^(?P<name>[^-]+?)(?:-(?P<version>[^-]+))?(?:-py[\d.]+)?(?:-[^-]+)?$")


def site_directories() -> list[Path]:
    """Where this interpreter's distributions are installed: what every child process sees too."""
    directories = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        directories.append(site.getusersitepackages())
    return [Path(d) for d in dict.fromkeys(directories)]


def installed_distributions(directories: Iterable[Path] | None = None) -> dict[str, str]:
    """{normalised name: version} of every distribution installed in `directories` (default: the
    site directories); the first directory wins, as it does for imports."""
    found: dict[str, str] = {}
    for directory in site_directories() if directories is None else directories:
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            continue
        for entry in entries:
            stem, dot, kind = entry.rpartition(".")
            if not dot or kind not in ("dist-info", "egg-info"):
                continue
            match = _DIST_NAME.match(stem)
            if match is None:
                continue
            name = re.sub(r"[-_.]+", "-", match["name"]).lower()
            found.setdefault(name, match["version"] or "?")
    return dict(sorted(found.items()))


def _hash(data: Mapping[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:_HASH_CHARS]


def fingerprint(trees: SourceTrees, *, plugin_args: Sequence[str]) -> dict[str, Any]:
    """The run's code as it is now: {"code_hash", "trees", "packages", "plugin_args"} (JSON-ready)."""
    data = {
        "trees": tree_state(trees),
        "packages": installed_distributions(),
        "plugin_args": list(plugin_args),
    }
    return {"code_hash": _hash(data), **data}


def _file_changes(label: str, old: Mapping[str, str], new: Mapping[str, str], *, every_file: bool) -> list[str]:
    """Phrases for files whose hash differs. `every_file`: the maps list every file (a tree outside
    git), so a missing entry means the file is absent; else they list the files that differ from
    HEAD, so a missing entry means the file is back to HEAD's content."""
    changes = []
    for relative in sorted(set(old) | set(new)):
        before, after = old.get(relative), new.get(relative)
        if before == after:
            continue
        where = f"{label}/{relative}" if label else relative
        if after == _DELETED or (after is None and every_file):
            changes.append(f"{where} deleted")
        elif before is None and every_file:
            changes.append(f"{where} added")
        else:
            changes.append(f"{where} changed")
    return changes


def fingerprint_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two fingerprints, one short phrase per change ([] when the code hashes
    agree): `suite/test_api.py changed`, `git HEAD of /src 1a2b3c4d5e6f -> ...`, `pytest 8.0 -> 8.1`."""
    if old.get("code_hash") == new.get("code_hash"):
        return []
    changes: list[str] = []
    old_trees, new_trees = old.get("trees") or {}, new.get("trees") or {}
    for tree in sorted(set(old_trees) | set(new_trees)):
        before, after = old_trees.get(tree), new_trees.get(tree)
        if before is None or after is None:
            changes.append(f"{tree} {'added to' if before is None else 'removed from'} the measured code")
            continue
        if before.get("commit") != after.get("commit"):
            changes.append(f"git HEAD of {tree} {str(before.get('commit'))[:12]} -> {str(after.get('commit'))[:12]}")
        if "files" in before or "files" in after:
            changes += _file_changes(tree, before.get("files") or {}, after.get("files") or {}, every_file=True)
        else:
            changes += _file_changes("", before.get("changed") or {}, after.get("changed") or {}, every_file=False)
    old_packages, new_packages = old.get("packages") or {}, new.get("packages") or {}
    for name in sorted(set(old_packages) | set(new_packages)):
        before, after = old_packages.get(name), new_packages.get(name)
        if before == after:
            continue
        if before is None:
            changes.append(f"{name} {after} installed")
        elif after is None:
            changes.append(f"{name} {before} uninstalled")
        else:
            changes.append(f"{name} {before} -> {after}")
    if list(old.get("plugin_args") or []) != list(new.get("plugin_args") or []):
        changes.append(f"timing plugin arguments {old.get('plugin_args')} -> {new.get('plugin_args')}")
    return changes or ["the code hash differs"]


def describe_changes(changes: Sequence[str]) -> str:
    """`a changed, b changed and 3 more`: a list of changes short enough for one line."""
    named = ", ".join(changes[:_NAMED_CHANGES])
    rest = len(changes) - _NAMED_CHANGES
    return named + (f" and {rest} more" if rest > 0 else "")
