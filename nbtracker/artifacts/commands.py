"""Command-line commands of artifacts: `nbtracker artifact …`.

    nbtracker artifact ls [PROJECT] [--json]           the artifacts: versions, aliases, size
    nbtracker artifact show REF [--json]               one version: digest, lineage, metadata, files
    nbtracker artifact get REF [-o DIR]                download it (default ./artifacts/NAME:vN)
    nbtracker artifact rm REF [--delete-aliases]       delete a version; prints the bytes freed
    nbtracker artifact alias REF ALIAS… [--remove A]   move aliases onto a version, or take them off
    nbtracker artifact cache size                      what the download cache holds
    nbtracker artifact cache cleanup [--max-size 10GB] least recently used cached files go first
    nbtracker artifact gc [--older-than SECONDS]       stored files no version names

REF is `name`, `name:v3`, `name:alias`, `project/name:alias` or `entity/project/name:alias`;
without a project it is the default project (NBTRACKER_PROJECT or settings.json), without `:…`
it is `latest`. Artifacts are read from the store (`--dir`, NBTRACKER_DIR or ~/.nbtracker).

Exit codes: 0 done, 1 failed (a bad reference, no such version, a file whose bytes do not
match its manifest), 2 bad usage (a size or age that is not one); errors are one line on
stderr starting with "nbtracker: ".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def add_commands(sub) -> None:
    """Register `artifact` and its actions on the `nbtracker` parser."""
    a = sub.add_parser(
        "artifact", help="list, show, download, delete and alias artifact versions",
        description="Artifacts (versioned datasets and models) in the store: list them, show "
        "or download a version, delete one, move aliases, and keep the download cache and the "
        "object directory small. REF is name, name:v3, name:alias or project/name:alias; "
        "without ':…' it is the latest version.")
    acts = a.add_subparsers(dest="action", metavar="ACTION")
    acts.required = True

    s = acts.add_parser("ls", help="list artifacts",
                        description="List the artifacts of a project (of every project when "
                        "none is given): type, number of versions, aliases and the size of the "
                        "latest version.")
    s.add_argument("project", nargs="?", metavar="PROJECT", help="only this project")
    s.add_argument("--json", action="store_true", help="JSON Lines, one artifact per line")
    s.set_defaults(fn=cmd_ls)

    s = acts.add_parser("show", help="show one version",
                        description="Show a version: type, digest, aliases, when it was made, "
                        "the run that logged it and the runs that used it, description, "
                        "metadata and files.")
    s.add_argument("ref", metavar="REF", help="name[:vN|:alias], project/name[:…]")
    s.add_argument("--json", action="store_true", help="one JSON object")
    s.set_defaults(fn=cmd_show)

    s = acts.add_parser("get", help="download a version",
                        description="Copy a version's files into a folder, each checked "
                        "against its SHA-256 (a file whose bytes do not match is not written); "
                        "prints the folder.")
    s.add_argument("ref", metavar="REF", help="name[:vN|:alias], project/name[:…]")
    s.add_argument("-o", "--output", "--root", dest="output", metavar="DIR",
                   help="folder to write into (default: ./artifacts/NAME:vN, or under "
                   "NBTRACKER_ARTIFACT_DIR)")
    s.set_defaults(fn=cmd_get)

    s = acts.add_parser("rm", help="delete a version",
                        description="Delete a version: its manifest, its aliases (`latest` moves "
                        "to the newest version left) and the stored files no other version "
                        "holds. Prints the bytes freed.")
    s.add_argument("ref", metavar="REF", help="name:vN (or name:alias, name for the latest)")
    s.add_argument("--delete-aliases", action="store_true",
                   help="delete it even though aliases other than `latest` name it")
    s.set_defaults(fn=cmd_rm)

    s = acts.add_parser("alias", help="move aliases onto a version, or take them off",
                        usage="nbtracker artifact alias REF [ALIAS ...] [--remove ALIAS]",
                        description="Put aliases on a version (an alias another version has "
                        "moves here), or take them off with --remove. `latest` names the "
                        "version logged last and cannot be removed.")
    s.add_argument("ref", metavar="REF", help="name[:vN|:alias], project/name[:…]")
    s.add_argument("aliases", nargs="*", metavar="ALIAS", help="aliases to put on the version")
    s.add_argument("--remove", action="append", default=[], metavar="ALIAS",
                   help="an alias to take off the version (repeat for more)")
    s.set_defaults(fn=cmd_alias)

    s = acts.add_parser("cache", help="the download cache of referenced files",
                        description="The cache of files that artifacts reference elsewhere "
                        "(http(s)://, s3://, gs://, …), fetched on download: NBTRACKER_CACHE_DIR, "
                        "else <store>/cache.")
    cache = s.add_subparsers(dest="cache_action", metavar="ACTION")
    cache.required = True
    c = cache.add_parser("size", help="files and bytes in the cache",
                         description="Print the files and bytes the download cache holds, and "
                         "its cap.")
    c.set_defaults(fn=cmd_cache_size)
    c = cache.add_parser("cleanup", help="remove least recently used files down to a size",
                         description="Remove the least recently used cached files until the "
                         "cache holds at most --max-size bytes. Prints the files removed and the "
                         "bytes freed.")
    c.add_argument("--max-size", metavar="SIZE",
                   help="10GB, 500MB, 1GiB or bytes; 0 empties the cache (default: "
                   "NBTRACKER_ARTIFACT_CACHE_MAX, else 10GB)")
    c.set_defaults(fn=cmd_cache_cleanup)

    s = acts.add_parser("gc", help="remove stored files no version names",
                        description="Remove files from the object directory that no version "
                        "names (left by artifacts built and never logged, or by a crash) and "
                        "that were not touched for --older-than seconds.")
    s.add_argument("--older-than", type=float, default=3600.0, metavar="SECONDS",
                   help="leave files younger than this: a draft being built may hold them "
                   "(default: 3600)")
    s.set_defaults(fn=cmd_gc)


# -- helpers ---------------------------------------------------------------------------------
def _settings(args: argparse.Namespace):
    from ..sdk.settings import Settings, resolve_root

    return Settings.resolve(root=resolve_root(args.dir) if getattr(args, "dir", None) else None)


def _registry(args: argparse.Namespace):
    from .registry import Registry

    return Registry(_settings(args).root)


def _resolve(args: argparse.Namespace, text: str) -> tuple[Any, dict]:
    """The registry and the version REF names; ArtifactError (exit 1) for a bad or unknown one."""
    from .names import parse_ref
    from .registry import Registry

    settings = _settings(args)
    ref = parse_ref(text, settings.project)
    registry = Registry(settings.root)
    return registry, registry.resolve(ref.project, ref.name, ref.selector)


def _out(text: str = "") -> None:
    from ..sdk.output import safe

    print(safe(text))


def human(n: int | None) -> str:
    """Bytes in the units sizes are given in (1 KB = 1000 bytes): 512 B, 1.5 MB, 10 GB."""
    if n is None:
        return "-"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n} B" if unit == "B" else f"{n:.3g} {unit}"
        n /= 1000
    return f"{n} TB"  # not reached


def _when(ts: float | None) -> str:
    from .artifact import _iso

    return _iso(ts) if ts else ""


def _aliases(aliases: dict[str, int]) -> list[tuple[str, int]]:
    """(alias, version) pairs, `latest` first, then by version and name."""
    return sorted(aliases.items(), key=lambda kv: (kv[0] != "latest", kv[1], kv[0]))


def _label(doc: dict) -> str:
    return f"{doc['project']}/{doc['name']}:v{doc['version']}"


# -- ls --------------------------------------------------------------------------------------
def cmd_ls(args: argparse.Namespace) -> int:
    from ..cli import _table

    registry = _registry(args)
    if args.project is not None:
        from ..store.layout import check_project

        check_project(args.project)  # ValueError: one line, exit 1
    rows = []
    for coll in registry.collections(args.project):
        versions = registry.versions(coll["project"], coll["name"])
        latest = coll["aliases"].get("latest")
        newest = next((d for d in versions if d["version"] == latest), None)
        rows.append({"project": coll["project"], "name": coll["name"], "type": coll["type"],
                     "versions": len(versions),
                     "latest": None if newest is None else f"v{newest['version']}",
                     "aliases": {a: f"v{v}" for a, v in _aliases(coll["aliases"])},
                     "size": None if newest is None else newest.get("size"),
                     "created": _when(coll.get("created"))})
    if args.json:
        for r in rows:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        return 0
    if not rows:
        where = f"project {args.project!r}" if args.project else "the store"
        _out(f"no artifacts in {where} ({registry.store_root})")
        return 0
    table = [["PROJECT", "NAME", "TYPE", "VERSIONS", "ALIASES", "SIZE"]]
    for r in rows:
        table.append([r["project"], r["name"], r["type"], str(r["versions"]),
                      ", ".join(f"{a}→{v}" for a, v in r["aliases"].items()),
                      human(r["size"])])
    _table(table)
    return 0


# -- show ------------------------------------------------------------------------------------
def _lineage(registry, doc: dict) -> tuple[dict | None, list[dict]]:
    """The run that logged the version ({project, id, name}) and the runs that used it."""
    from .artifact import Artifact

    art = Artifact._from_doc(registry, doc)
    by = doc.get("created_by")
    logged = None
    if by:
        run = art.logged_by()
        logged = {"project": by["project"], "id": by["id"],
                  "name": run.name if run is not None else None}
    used = [{"project": r.project, "id": r.id, "name": r.name} for r in art.used_by()]
    return logged, used


def _run_label(r: dict) -> str:
    name = f" ({r['name']})" if r.get("name") and r["name"] != r["id"] else ""
    return f"{r['project']}/{r['id']}{name}"


def cmd_show(args: argparse.Namespace) -> int:
    from ..cli import _fmt, _table

    registry, doc = _resolve(args, args.ref)
    logged, used = _lineage(registry, doc)
    entries = doc.get("entries") or {}
    files = [{"path": p, "size": e.get("size"), "digest": e.get("digest"), "ref": e.get("ref")}
             for p, e in sorted(entries.items())]
    if args.json:
        out = {"project": doc["project"], "name": doc["name"], "version": f"v{doc['version']}",
               "type": doc["type"], "digest": doc["digest"], "aliases": doc["aliases"],
               "created": _when(doc.get("created")), "updated": _when(doc.get("updated")),
               "logged_by": logged, "used_by": used, "description": doc.get("description"),
               "metadata": doc.get("metadata") or {}, "tags": doc.get("tags") or [],
               "size": doc.get("size"), "file_count": len(files), "files": files}
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return 0
    _out(f"artifact   {_label(doc)}")
    _out(f"type       {doc['type']}")
    _out(f"digest     {doc['digest']}")
    _out(f"aliases    {', '.join(doc['aliases']) or '-'}")
    _out(f"created    {_when(doc.get('created'))}")
    _out(f"logged by  {_run_label(logged) if logged else '-'}")
    _out(f"used by    {', '.join(_run_label(r) for r in used) or '-'}")
    if doc.get("tags"):
        _out(f"tags       {', '.join(doc['tags'])}")
    if doc.get("description"):
        _out(f"description {doc['description']}")
    meta = doc.get("metadata") or {}
    print()
    _out("metadata:")
    if not meta:
        _out("  (none)")
    for k in sorted(meta):
        _out(f"  {k} = {_fmt(meta[k])}")
    print()
    _out(f"files ({len(files)}, {human(doc.get('size'))}):")
    if not files:
        _out("  (none)")
    rows = [["  " + f["path"], human(f["size"]),
             f["ref"] or ((f["digest"] or "")[:12] + "…" if f["digest"] else "")]
            for f in files]
    _table(rows)
    return 0


# -- get, rm, alias --------------------------------------------------------------------------
def cmd_get(args: argparse.Namespace) -> int:
    from .artifact import Artifact

    registry, doc = _resolve(args, args.ref)
    art = Artifact._from_doc(registry, doc)
    path = art.download(root=args.output)  # ArtifactCorrupt (an OSError): one line, exit 1
    print(f"downloaded {_label(doc)} ({len(doc.get('entries') or {})} files, "
          f"{human(doc.get('size'))})", file=sys.stderr)
    _out(str(Path(path).resolve()))
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    from .errors import ArtifactError

    registry, doc = _resolve(args, args.ref)
    held = [a for a in doc["aliases"] if a != "latest"]
    if held and not args.delete_aliases:  # the registry checks again, in its own words
        raise ArtifactError(f"{_label(doc)} has the aliases {', '.join(held)}; pass "
                            f"--delete-aliases to delete it with them")
    freed = registry.delete(doc["project"], doc["name"], doc["version"], args.delete_aliases)
    _out(f"deleted {_label(doc)}; freed {freed} bytes ({human(freed)})")
    return 0


def cmd_alias(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from .errors import ArtifactError
    from .names import LATEST, check_aliases

    if not args.aliases and not args.remove:
        raise UsageError("name the aliases to put on the version, or --remove ALIAS")
    add = check_aliases(args.aliases)
    remove = check_aliases(args.remove)
    both = sorted(set(add) & set(remove))
    if both:
        raise UsageError(f"{', '.join(both)}: both added and removed")
    if LATEST in remove:
        raise ArtifactError("`latest` names the version logged last; it cannot be removed")
    registry, doc = _resolve(args, args.ref)
    missing = [a for a in remove if a not in doc["aliases"]]
    if missing:
        raise ArtifactError(f"{_label(doc)} has no alias {', '.join(missing)} "
                            f"(it has: {', '.join(doc['aliases']) or 'none'})")
    coll = registry.collection(doc["project"], doc["name"]) or {"aliases": {}}
    moved = {a: coll["aliases"][a] for a in add
             if a in coll["aliases"] and coll["aliases"][a] != doc["version"]}
    new = registry.update(doc["project"], doc["name"], doc["version"], add=add, remove=remove)
    for a, v in sorted(moved.items()):
        _out(f"moved {a} from v{v}")
    if remove:
        _out(f"removed {', '.join(remove)}")
    _out(f"{_label(new)} aliases: {', '.join(new['aliases']) or '-'}")
    return 0


# -- cache, gc -------------------------------------------------------------------------------
def cmd_cache_size(args: argparse.Namespace) -> int:
    from .cache import cache_dir, cache_max, usage
    from .errors import ArtifactError

    root = _settings(args).root
    files, size = usage(root)
    try:
        cap = human(cache_max())
    except ArtifactError as e:
        cap = f"invalid NBTRACKER_ARTIFACT_CACHE_MAX ({e})"
    _out(f"{files} file(s), {size} bytes ({human(size)}) in {cache_dir(root)}; cap {cap}")
    return 0


def cmd_cache_cleanup(args: argparse.Namespace) -> int:
    from ..errors import UsageError
    from .cache import cache_dir, cache_max, cleanup, parse_size, usage
    from .errors import ArtifactError

    root = _settings(args).root
    try:
        cap = cache_max() if args.max_size is None else parse_size(args.max_size)
    except ArtifactError as e:
        raise UsageError(f"--max-size: {e}" if args.max_size is not None else e) from None
    removed, freed = cleanup(root, cap)
    files, size = usage(root)
    _out(f"removed {removed} file(s), freed {freed} bytes ({human(freed)}); the cache holds "
         f"{files} file(s), {human(size)} (cap {human(cap)}) in {cache_dir(root)}")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    import math

    from ..errors import UsageError

    if not math.isfinite(args.older_than) or args.older_than < 0:
        raise UsageError(f"--older-than is a number of seconds (≥ 0), not {args.older_than}")
    n, freed = _registry(args).collect_garbage(args.older_than)
    _out(f"removed {n} stored file(s) no version names, freed {freed} bytes ({human(freed)})")
    return 0
