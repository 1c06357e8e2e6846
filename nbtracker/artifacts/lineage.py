"""The lineage of an artifact version or of a run: a small graph every notebook viewer draws.

>>> Lineage.of(api.artifact("mnist:v1"))          # what an Artifact shows as a cell's result
>>> Lineage.of_run(api.run("mnist/abc123"), depth=2).save("lineage.svg")

Nodes are artifact versions and runs. An edge goes from a version to a run that used it
(`use_artifact`) and from a run to a version it logged (`log_artifact`). Both come from the
runs' `artifact` records (their record logs: the graph survives a rebuilt index), and the
focused version's `created_by`; the registry says what each version is now (its aliases, or
that it was deleted).

Gathering walks `depth` hops upstream and downstream of the focused node — for a version one
hop is the runs that logged it and their inputs, and the runs that used it and their outputs —
never visiting a node twice (a run may use what it logged), and stops at MAX_NODES.

Drawing (`to_svg`): columns left to right in topological order (inputs left, outputs right),
at most MAX_PER_COLUMN boxes a column (the rest folded into one "+N more" box), each box as
wide as its label (labels longer than LABEL_CELLS are cut with "…"), the focused node drawn
with a heavy border. Plain SVG: no script, no network, user text escaped. The notebook form
(`_repr_mimebundle_`) is a static form as notebook/static.py makes them: a caption and the
SVG as an image in `text/html`, the SVG as `image/svg+xml`, and a text form in `text/plain`.
"""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from dataclasses import dataclass, field
from html import escape as _html_escape
from pathlib import Path
from typing import Any

from .errors import ArtifactError, ArtifactNotFound

MAX_NODES = 400  # nodes gathered, whatever the depth
MAX_PER_COLUMN = 12  # boxes drawn in a column, the "+N more" box included
LABEL_CELLS = 30  # a label longer than this (in character cells) is cut with "…"
DETAIL_CELLS = 36

# drawing, in px; text is monospace, so a label's width follows from its length
_FONT = "ui-monospace,SFMono-Regular,Menlo,Consolas,'DejaVu Sans Mono','Liberation Mono',monospace"
_LABEL_PX, _DETAIL_PX = 11, 10
_CELL = 0.62  # a monospace cell is 0.6 em wide in common fonts; a little spare
_PAD_X, _BOX_H, _GAP_Y, _GAP_X, _MARGIN, _MIN_W, _LANE = 9, 36, 12, 56, 10, 84, 9
_TYPE_COLORS = {"dataset": ("#4c78a8", "#eaf1f8"), "model": ("#f58518", "#fdf1e5")}
_OTHER = ("#72b7b2", "#ebf6f5")
_RUN = ("#666666", "#f5f5f5")
_STATE_COLORS = {"finished": "#2e7d32", "failed": "#c62828", "crashed": "#c62828",
                 "running": "#1565c0", "deleted": "#999999", "not in store": "#999999"}


@dataclass
class LineageNode:
    """An artifact version (`kind` "artifact": `name`, `version`, `type`, `aliases`) or a run
    (`kind` "run": `run_id`, `name`, `state`). A version's `state` is "" while it is stored,
    "deleted" once deleted ("unreadable" when its file cannot be read); a run's is its state, or
    "not in store" when its folder is gone. `column` is where
    the drawing puts it (0: leftmost)."""

    id: str
    kind: str
    project: str
    name: str
    version: int | None = None
    type: str | None = None
    run_id: str | None = None
    state: str = ""
    aliases: list[str] = field(default_factory=list)
    focus: bool = False
    column: int = 0
    order: tuple = field(default=(), repr=False)  # its place in its column, before crossings
    # are reduced

    @property
    def label(self) -> str:
        """"mnist:v3" for a version, the run's name for a run."""
        if self.kind == "artifact":
            return f"{self.name}:v{self.version}"
        return self.name

    def describe(self, home: str | None = None) -> str:
        """The node in the text form: "mnist:v3 (dataset)", "run train-1 (abc123, finished)";
        the project is named when it is not `home`."""
        where = f"{self.project}/" if home is not None and self.project != home else ""
        if self.kind == "artifact":
            gone = ", deleted" if self.state == "deleted" else ""
            return f"{where}{_clean(self.label)} ({self.type}{gone})"
        return f"run {_clean(self.name)} ({where}{self.run_id}, {self.state or 'unknown'})"


@dataclass(frozen=True)
class LineageEdge:
    """`source` → `target` (node ids): a run used a version ("used") or logged it ("logged")."""

    source: str
    target: str
    kind: str


def _artifact_id(project: str, name: str, version: int) -> str:
    return f"artifact:{project}/{name}:v{version}"


def _run_id(project: str, run_id: str) -> str:
    return f"run:{project}/{run_id}"


class _Runs:
    """Every run's artifact records, read once: who logged and who used each version."""

    def __init__(self, root: Path):
        from ..api import Api

        self.api = Api(dir=str(root))
        self.runs: dict[str, Any] = {}
        self.records: dict[str, list[dict]] = {}
        self.loggers: dict[str, list[str]] = {}
        self.users: dict[str, list[str]] = {}
        self.types: dict[str, str] = {}
        for r in self.api.runs(order="+created_at"):
            self.add(r)

    def add(self, run: Any) -> str:
        rid = _run_id(run.project, run.id)
        if rid in self.runs:
            return rid
        self.runs[rid] = run
        # the run's `artifact` records as its state replays them (as Artifact.used_by reads)
        recs = list(run._stored.state.artifacts)
        self.records[rid] = recs
        for a in recs:
            vid = _artifact_id(a["project"], a["name"], int(a["version"]))
            self.types.setdefault(vid, a.get("type") or "")
            side = self.loggers if a.get("io") == "out" else self.users
            side.setdefault(vid, [])
            if rid not in side[vid]:
                side[vid].append(rid)
        return rid

    def inputs(self, rid: str) -> list[tuple[str, dict]]:
        return self._io(rid, "in")

    def outputs(self, rid: str) -> list[tuple[str, dict]]:
        return self._io(rid, "out")

    def _io(self, rid: str, io: str) -> list[tuple[str, dict]]:
        return [(_artifact_id(a["project"], a["name"], int(a["version"])), a)
                for a in self.records.get(rid, []) if a.get("io") == io]


class Lineage:
    """Where an artifact version came from and where it went: datasets → runs → models.

    Made with `Lineage.of(artifact)` (or `artifact.lineage()`) or `Lineage.of_run(run)`.
    `nodes` (LineageNode) and `edges` (LineageEdge) hold the graph for code to read; a notebook
    draws it (see the module doc); `to_svg()`, `save(path)` and `str()` give its forms.

    Args (of `of` and `of_run`):
        depth: hops to walk each way from the focused node (default 1; 0 is the node alone).
    """

    def __init__(self, nodes: list[LineageNode], edges: list[LineageEdge], focus: str,
                 caption: dict | None = None, truncated: int = 0):
        self.nodes = nodes
        self.edges = edges
        self.focus = focus
        self.truncated = truncated  # nodes next to these left out (MAX_NODES were gathered)
        self._caption = caption or {}
        self._by_id = {n.id: n for n in nodes}
        _place(self)

    # -- making one ------------------------------------------------------------------------
    @classmethod
    def of(cls, artifact: Any, depth: int = 1) -> Lineage:
        """The lineage of a logged artifact version."""
        depth = _check_depth(depth)
        doc = getattr(artifact, "_doc", None)
        if doc is None:
            raise ArtifactError("lineage: the artifact is a draft; log it first (run.log_artifact)")
        registry = artifact._registry
        runs = _Runs(registry.store_root)
        focus = _artifact_id(doc["project"], doc["name"], int(doc["version"]))
        g = _Gather(runs, registry)
        g.version(focus, {"project": doc["project"], "name": doc["name"],
                          "version": doc["version"], "type": doc["type"]}, doc)
        by = doc.get("created_by")
        if by and by.get("id"):  # the copy the registry keeps: also when the run is gone
            rid = _run_id(by.get("project") or doc["project"], by["id"])
            if rid not in runs.loggers.get(focus, []):
                runs.loggers.setdefault(focus, []).insert(0, rid)
        g.walk(focus, depth)
        caption = {"what": "artifact", "doc": doc, "files": artifact.file_count,
                   "size": artifact.size}
        return cls(*g.result(focus), caption=caption, truncated=g.truncated)

    @classmethod
    def of_run(cls, run: Any, depth: int = 1) -> Lineage:
        """The lineage of a run: what it used and logged, and (with `depth`) beyond. `run` is an
        Api run, the run `nbtracker.init()` returned, or "project/run_id"."""
        depth = _check_depth(depth)
        api_run = _api_run(run)
        from .registry import Registry

        root = _local_root(api_run)
        runs = _Runs(root)
        focus = runs.add(api_run)  # a team server's run is not in the local store's scan
        g = _Gather(runs, Registry(root))
        g.run(focus)
        g.walk(focus, depth)
        return cls(*g.result(focus), caption={"what": "run"}, truncated=g.truncated)

    # -- reading it ------------------------------------------------------------------------
    def node(self, node_id: str) -> LineageNode:
        return self._by_id[node_id]

    @property
    def focused(self) -> LineageNode:
        return self._by_id[self.focus]

    def to_svg(self) -> str:
        """The graph as one SVG document."""
        return _svg(self)

    def to_text(self) -> str:
        """The graph as lines of text: "mnist:v0 (dataset) → run train-1 (abc123, finished) →
        mnist-cnn:v3 (model)", one line a run; the focused node in [brackets]."""
        return _text(self)

    def save(self, path: str | os.PathLike) -> str:
        """Write the graph to `path`: an .svg image, or an .html page (the notebook's form)."""
        p = Path(os.fspath(path))
        suffix = p.suffix.lower()
        if suffix == ".svg":
            data = self.to_svg()
        elif suffix in (".html", ".htm"):
            body = self._repr_mimebundle_()["text/html"]
            data = (f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>'
                    f'{_esc(self._title())}</title></head><body>{body}</body></html>\n')
        else:
            raise ValueError(f"save({os.fspath(path)!r}): the name must end in .svg or .html")
        p.write_text(data, encoding="utf-8")
        return str(p)

    def _title(self) -> str:
        f = self.focused
        return f"lineage of {f.label if f.kind == 'artifact' else 'run ' + _clean(f.name)}"

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        svg = self.to_svg()
        data = {"text/html": _html(self, svg), "image/svg+xml": svg, "text/plain": self.to_text()}
        if include:
            data = {k: v for k, v in data.items() if k in include}
        if exclude:
            data = {k: v for k, v in data.items() if k not in exclude}
        return data

    def __repr__(self) -> str:
        return self.to_text()


# -- gathering -------------------------------------------------------------------------------

class _Gather:
    def __init__(self, runs: _Runs, registry: Any):
        self.runs = runs
        self.registry = registry
        self.nodes: dict[str, LineageNode] = {}
        self.edges: dict[tuple[str, str], LineageEdge] = {}
        self.left_out: set[str] = set()

    @property
    def truncated(self) -> int:
        return len(self.left_out)

    def _room(self, node_id: str) -> bool:
        if node_id in self.nodes:
            return True
        if len(self.nodes) >= MAX_NODES:
            self.left_out.add(node_id)
            return False
        return True

    def version(self, vid: str, rec: dict, doc: dict | None = None) -> bool:
        if vid in self.nodes:
            return True
        if not self._room(vid):
            return False
        state = ""
        if doc is None:
            try:
                doc = self.registry.resolve(rec["project"], rec["name"], f"v{int(rec['version'])}")
            except ArtifactNotFound:
                state = "deleted"
            except ArtifactError:
                state = "unreadable"
        typ = (doc or {}).get("type") or rec.get("type") or self.runs.types.get(vid) or "?"
        self.nodes[vid] = LineageNode(
            id=vid, kind="artifact", project=rec["project"], name=rec["name"],
            version=int(rec["version"]), type=typ, state=state,
            aliases=list((doc or {}).get("aliases") or []),
            order=(1, rec["project"], rec["name"], int(rec["version"])))
        return True

    def run(self, rid: str) -> bool:
        if rid in self.nodes:
            return True
        if not self._room(rid):
            return False
        r = self.runs.runs.get(rid)
        project, _, run_id = rid[len("run:"):].rpartition("/")
        if r is None:
            self.nodes[rid] = LineageNode(id=rid, kind="run", project=project, name=run_id,
                                          run_id=run_id, state="not in store",
                                          order=(0, float("inf"), run_id))
        else:
            self.nodes[rid] = LineageNode(
                id=rid, kind="run", project=r.project, name=str(r.name or r.id), run_id=r.id,
                state=str(r.state or ""), order=(0, float(r.created or 0), r.id))
        return True

    def _edge(self, source: str, target: str, kind: str) -> None:
        if source in self.nodes and target in self.nodes:
            self.edges.setdefault((source, target), LineageEdge(source, target, kind))

    def _upstream(self, node_id: str) -> list[str]:
        """Gather the nodes one edge upstream of `node_id`; return those added or known."""
        out = []
        if node_id.startswith("run:"):
            for vid, rec in self.runs.inputs(node_id):
                if self.version(vid, rec):
                    self._edge(vid, node_id, "used")
                    out.append(vid)
        else:
            for rid in self.runs.loggers.get(node_id, []):
                if self.run(rid):
                    self._edge(rid, node_id, "logged")
                    out.append(rid)
        return out

    def _downstream(self, node_id: str) -> list[str]:
        out = []
        if node_id.startswith("run:"):
            for vid, rec in self.runs.outputs(node_id):
                if self.version(vid, rec):
                    self._edge(node_id, vid, "logged")
                    out.append(vid)
        else:
            for rid in self.runs.users.get(node_id, []):
                if self.run(rid):
                    self._edge(node_id, rid, "used")
                    out.append(rid)
        return out

    def walk(self, focus: str, depth: int) -> None:
        """`depth` hops (two edges each) upstream and downstream of `focus`, breadth first;
        a node already gathered is not walked again."""
        for step in (self._upstream, self._downstream):
            seen = {focus}
            frontier = [focus]
            for _ in range(2 * depth):
                nxt = []
                for n in frontier:
                    for m in step(n):
                        if m not in seen:
                            seen.add(m)
                            nxt.append(m)
                frontier = nxt
                if not frontier:
                    break
        # edges between gathered nodes the walks did not take (a run that used two of them)
        for rid in [n for n in self.nodes if n.startswith("run:")]:
            for vid, _ in self.runs.inputs(rid):
                self._edge(vid, rid, "used")
            for vid, _ in self.runs.outputs(rid):
                self._edge(rid, vid, "logged")

    def result(self, focus: str) -> tuple[list[LineageNode], list[LineageEdge], str]:
        self.nodes[focus].focus = True
        return list(self.nodes.values()), list(self.edges.values()), focus


def _check_depth(depth: Any) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
        raise ValueError(f"lineage depth must be a whole number ≥ 0, not {depth!r}")
    return depth


def _api_run(run: Any) -> Any:
    from ..api import Api, ApiRun

    if isinstance(run, ApiRun):
        return run
    if isinstance(run, str):
        return Api().find(run)
    if hasattr(run, "project") and hasattr(run, "id"):  # a Run from init()
        root = getattr(getattr(run, "settings", None), "root", None)
        api = Api(dir=str(root)) if root is not None else Api()
        return api.run(f"{run.project}/{run.id}")
    raise ValueError(f"lineage of a run: give a run or 'project/run_id', not {run!r}")


def _local_root(api_run: Any) -> Path:
    """Where artifacts are stored for this run: its local store (a team server's run: the
    local store of these settings, as ApiRun.logged_artifacts reads)."""
    if not getattr(api_run, "_remote", False):
        return Path(api_run._store.root)
    from ..sdk.settings import Settings

    return Path(Settings.resolve().root)


# -- layout ----------------------------------------------------------------------------------

def _columns(nodes: list[LineageNode], edges: list[LineageEdge]) -> None:
    """Set each node's column: longest path from the sources, with cycles broken at the edge
    that closes them; a node with no inputs then sits just left of its first output."""
    ids = [n.id for n in sorted(nodes, key=lambda n: n.order)]
    succ: dict[str, list[str]] = {i: [] for i in ids}
    for e in edges:
        if e.source in succ and e.target in succ:
            succ[e.source].append(e.target)
    order: list[str] = []  # reverse post-order: a topological order of the acyclic part
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    for root in ids:
        if root in state:
            continue
        stack = [(root, iter(succ[root]))]
        state[root] = 1
        while stack:
            n, it = stack[-1]
            m = next(it, None)
            if m is None:
                state[n] = 2
                order.append(n)
                stack.pop()
            elif state.get(m) == 1:
                back.add((n, m))
            elif m not in state:
                state[m] = 1
                stack.append((m, iter(succ[m])))
    order.reverse()
    pred: dict[str, list[str]] = {i: [] for i in ids}
    for n in ids:
        succ[n] = [m for m in succ[n] if (n, m) not in back]
        for m in succ[n]:
            pred[m].append(n)
    col: dict[str, int] = {}
    for n in order:
        col[n] = max((col[p] + 1 for p in pred[n]), default=0)
    for n in reversed(order):
        if not pred[n] and succ[n]:
            col[n] = min(col[m] for m in succ[n]) - 1
    for node in nodes:
        node.column = col[node.id]


@dataclass
class _Box:
    """A box in the drawing: a node, or the "+N more" box of a column."""

    id: str
    node: LineageNode | None
    column: int
    label: str
    detail: str
    more: int = 0
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    rank: float = 0.0


def _place(lin: Lineage) -> None:
    """Columns, the boxes drawn in each (folded past MAX_PER_COLUMN) and their order."""
    _columns(lin.nodes, lin.edges)
    lin.nodes.sort(key=lambda n: (n.column, n.order))
    near = {e.source for e in lin.edges if e.target == lin.focus} | {
        e.target for e in lin.edges if e.source == lin.focus}
    home = lin.focused.project
    cols: dict[int, list[LineageNode]] = {}
    for n in lin.nodes:
        cols.setdefault(n.column, []).append(n)
    boxes: list[list[_Box]] = []
    where: dict[str, str] = {}  # node id -> the id of the box that shows it
    for c in sorted(cols):
        col = cols[c]
        keep = col
        if len(col) > MAX_PER_COLUMN:
            ranked = sorted(col, key=lambda n: (not n.focus, n.id not in near, n.order))
            keep = sorted(ranked[:MAX_PER_COLUMN - 1], key=lambda n: n.order)
        shown = [_node_box(n, home) for n in keep]
        for b in shown:
            where[b.id] = b.id
        rest = [n for n in col if n not in keep]
        if rest:
            kinds = {n.kind for n in rest}
            what = ("runs" if kinds == {"run"} else "versions" if kinds == {"artifact"}
                    else "runs and versions")
            more = _Box(f"more:{c}", None, c, f"+{len(rest)} more", what, more=len(rest))
            shown.append(more)
            for n in rest:
                where[n.id] = more.id
        boxes.append(shown)
    links: dict[tuple[str, str], str] = {}
    for e in lin.edges:
        s, t = where[e.source], where[e.target]
        if s != t:
            links.setdefault((s, t), e.kind)
    _order_rows(boxes, links)
    lin._boxes = boxes
    lin._links = links


def _node_box(n: LineageNode, home: str) -> _Box:
    where = f"{n.project}/" if n.project != home else ""
    if n.kind == "artifact":
        label = where + n.label
        detail = n.type or ""
        if n.state:
            detail += f" · {n.state}"
        elif n.aliases:
            detail += " · " + ",".join(a for a in n.aliases)
    else:
        label = _clean(n.name)
        detail = f"{where}{n.run_id} · {n.state or 'unknown'}"
    return _Box(n.id, n, n.column, _cut(_clean(label), LABEL_CELLS),
                _cut(_clean(detail), DETAIL_CELLS))


def _order_rows(boxes: list[list[_Box]], links: dict[tuple[str, str], str]) -> None:
    """Order each column by where its boxes' neighbours sit (the barycenter rule), a few sweeps
    each way: fewer crossings, and a run next to what it used and logged."""
    pos: dict[str, float] = {}

    def number(col: list[_Box]) -> None:
        for i, b in enumerate(col):
            pos[b.id] = float(i)

    for col in boxes:
        number(col)
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for s, t in links:
        succs.setdefault(s, []).append(t)
        preds.setdefault(t, []).append(s)

    def sweep(cols: list[list[_Box]], nbrs: dict[str, list[str]]) -> None:
        for col in cols:
            for b in col:
                ps = [pos[m] for m in nbrs.get(b.id, []) if m in pos]
                b.rank = sum(ps) / len(ps) if ps else pos[b.id]
            # the "+N more" box stays last
            col.sort(key=lambda b: (b.more > 0, b.rank, pos[b.id]))
            number(col)

    for _ in range(2):
        sweep(boxes[1:], preds)
        sweep(list(reversed(boxes[:-1])), succs)


def _cells(s: str) -> int:
    """The width of `s` in monospace cells: wide (East Asian) characters take two."""
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in s)


def _cut(s: str, limit: int) -> str:
    if _cells(s) <= limit:
        return s
    out, used = [], 0
    for ch in s:
        w = _cells(ch)
        if used + w > limit - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


_SPACE = re.compile(r"[\s\x00-\x1f\x7f]+")


def _clean(s: Any) -> str:
    """A label on one line: runs of spaces and control characters as one space."""
    return _SPACE.sub(" ", str(s)).strip()


# -- drawing ---------------------------------------------------------------------------------

def esc(v: Any) -> str:
    """User text for HTML."""
    return _html_escape(str(v), quote=True)


def _esc(v: Any) -> str:
    """User text for SVG: escaped, quotes too (for attributes), XML-invalid characters replaced."""
    from ..charts.svg import text

    return text(v).replace('"', "&quot;")


def _svg(lin: Lineage) -> str:
    boxes: list[list[_Box]] = lin._boxes
    label_w, detail_w = _LABEL_PX * _CELL, _DETAIL_PX * _CELL
    x = float(_MARGIN)
    height = 0.0
    for col in boxes:
        for b in col:
            b.w = max(_MIN_W, 2 * _PAD_X + max(_cells(b.label) * label_w,
                                               _cells(b.detail) * detail_w))
        width = max(b.w for b in col)
        for i, b in enumerate(col):
            b.x = x + (width - b.w) / 2
            b.y = i * (_BOX_H + _GAP_Y)
        x += width + _GAP_X
        height = max(height, len(col) * (_BOX_H + _GAP_Y) - _GAP_Y)
    at = {b.id: b for col in boxes for b in col}
    # edges that close a cycle go back left: drawn in lanes under the boxes
    back = [k for k in lin._links if at[k[0]].column >= at[k[1]].column]
    lanes = {k: i for i, k in enumerate(back)}
    total_w = int(x - _GAP_X + _MARGIN + 0.999)
    total_h = int(height + 2 * _MARGIN + (_LANE * (len(back) + 1) if back else 0) + 0.999)
    for col in boxes:  # each column centred in the height
        used = len(col) * (_BOX_H + _GAP_Y) - _GAP_Y
        for b in col:
            b.y += _MARGIN + (height - used) / 2
    title = lin._title()
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
           f'viewBox="0 0 {total_w} {total_h}" font-family="{_FONT}" role="img" '
           f'aria-label="{_esc(title)}" class="nbt-lineage">',
           f"<title>{_esc(title)}</title>",
           f'<rect width="{total_w}" height="{total_h}" fill="#fff"/>']
    edges = []
    for (s, t), kind in lin._links.items():
        a, b = at[s], at[t]
        if (s, t) in lanes:  # down from the source, left under the boxes, up into the target
            low = _MARGIN + height + _LANE * (lanes[s, t] + 1)  # deeper lanes end further left
            k = lanes[s, t]
            sx = min(a.x + a.w - 10, a.x + a.w / 2 + 6 + 10 * k)
            tx = max(b.x + 10, b.x + b.w / 2 - 6 - 10 * k)
            turn = 6 if tx <= sx else -6
            d = (f"M{sx:.1f} {a.y + _BOX_H:.1f}V{low - 6:.1f}Q{sx:.1f} {low:.1f} "
                 f"{sx - turn:.1f} {low:.1f}H{tx + turn:.1f}Q{tx:.1f} {low:.1f} {tx:.1f} "
                 f"{low - 6:.1f}V{b.y + _BOX_H + 6:.1f}")
            head = _arrow(tx, b.y + _BOX_H + 1, "up")
        else:
            x1, y1 = a.x + a.w, a.y + _BOX_H / 2
            x2, y2 = b.x - 1, b.y + _BOX_H / 2
            mx = (x1 + x2) / 2
            d = f"M{x1:.1f} {y1:.1f}C{mx:.1f} {y1:.1f} {mx:.1f} {y2:.1f} {x2 - 5:.1f} {y2:.1f}"
            head = _arrow(x2, y2, "right")
        what = f"{_box_name(a)} {'used by' if kind == 'used' else 'logged'} {_box_name(b)}"
        edges.append(f'<g class="nbt-edge" data-kind="{kind}"><title>{_esc(what)}</title>'
                     f'<path d="{d}" fill="none"/><path d="{head}" fill="#8a8a8a" '
                     f'stroke="none"/></g>')
    out.append(f'<g stroke="#8a8a8a" stroke-width="1.3">{"".join(edges)}</g>')
    for col in boxes:
        for b in col:
            out.append(_box_svg(b))
    out.append("</svg>")
    return "".join(out)


def _box_name(b: _Box) -> str:
    if b.node is None:
        return f"{b.more} more {b.detail}"
    return b.node.label if b.node.kind == "artifact" else f"run {_clean(b.node.name)}"


def _arrow(x: float, y: float, way: str) -> str:
    if way == "up":
        return f"M{x:.1f} {y:.1f}l-4 7h8z"
    return f"M{x:.1f} {y:.1f}l-7 -4v8z"


def _box_svg(b: _Box) -> str:
    n = b.node
    dash = ""
    if n is None:
        stroke, fill, rx, kind = "#aaaaaa", "#fafafa", 4, "more"
        dash = ' stroke-dasharray="4 3"'
        full = f"{b.more} more {b.detail} not drawn"
        state_color = "#777"
    elif n.kind == "artifact":
        stroke, fill = _TYPE_COLORS.get(n.type or "", _OTHER)
        rx, kind = 3, "artifact"
        if n.state:
            dash = ' stroke-dasharray="4 3"'
        alias = f" · aliases {', '.join(n.aliases)}" if n.aliases else ""
        full = (f"{n.project}/{n.label} · {n.type}{alias}"
                + (f" · {n.state}" if n.state else ""))
        state_color = "#999999" if n.state else "#555"
    else:
        stroke, fill = _RUN
        rx, kind = 12, "run"
        full = f"run {_clean(n.name)} · {n.project}/{n.run_id} · {n.state or 'unknown'}"
        state_color = _STATE_COLORS.get(n.state, "#555")
        if n.state == "not in store":
            dash = ' stroke-dasharray="4 3"'
    width = 2.6 if n is not None and n.focus else 1.2
    if n is not None and n.focus:
        stroke = "#222222"
    focus = ' data-focus="true"' if n is not None and n.focus else ""
    tx = b.x + _PAD_X
    detail = _esc(b.detail)
    if n is not None and n.kind == "run":  # the state in its colour
        head, sep, state = b.detail.rpartition(" · ")
        if sep:
            detail = f'{_esc(head + sep)}<tspan fill="{state_color}">{_esc(state)}</tspan>'
    return (f'<g class="nbt-node" data-kind="{kind}" data-id="{_esc(b.id)}"{focus}>'
            f"<title>{_esc(full)}</title>"
            f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{_BOX_H}" '
            f'rx="{rx}" fill="{fill}" stroke="{stroke}" stroke-width="{width}"{dash}/>'
            f'<text class="nbt-label" x="{tx:.1f}" y="{b.y + 15:.1f}" font-size="{_LABEL_PX}" '
            f'font-weight="{700 if n is not None and n.focus else 600}" fill="#222">'
            f"{_esc(b.label)}</text>"
            f'<text class="nbt-detail" x="{tx:.1f}" y="{b.y + 29:.1f}" '
            f'font-size="{_DETAIL_PX}" fill="#555">{detail}</text></g>')


# -- text and caption ------------------------------------------------------------------------

def _text(lin: Lineage) -> str:
    home = lin.focused.project
    boxes = {b.id: b for col in lin._boxes for b in col}
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for s, t in lin._links:
        succs.setdefault(s, []).append(t)
        preds.setdefault(t, []).append(s)
    pos = {b.id: (c, i) for c, col in enumerate(lin._boxes) for i, b in enumerate(col)}

    def say(box_id: str) -> str:
        b = boxes[box_id]
        if b.node is None:
            return f"+{b.more} more {b.detail}"
        s = b.node.describe(home)
        return f"[{s}]" if b.node.focus else s

    def side(ids: list[str]) -> str:
        return ", ".join(say(i) for i in sorted(ids, key=pos.__getitem__))

    f = lin.focused
    head = f"lineage of {f.describe()} in project {f.project}"
    lines = [head]
    runs = [b for col in lin._boxes for b in col
            if (b.node is not None and b.node.kind == "run")
            or (b.node is None and b.detail == "runs")]
    for b in runs:
        parts = [side(preds.get(b.id, [])), say(b.id), side(succs.get(b.id, []))]
        lines.append("  " + " → ".join(p for p in parts if p))
    if len(lin._links) == 0:
        lines.append(f"  {say(lin.focus)}: no run logged or used it" if f.kind == "artifact"
                     else f"  {say(lin.focus)}: used and logged no artifacts")
    if lin.truncated:
        lines.append(f"  (stopped at {len(lin.nodes)} nodes: {lin.truncated} more next to them, "
                     f"and what lies beyond, not shown)")
    return "\n".join(lines)


# the static forms' box (notebook/static.py, not imported: it would load the widgets)
_BOX = ("font-family:-apple-system,BlinkMacSystemFont,'Segoe UI',Helvetica,Arial,sans-serif;"
        "font-size:12px;color:#222;padding:4px 0")


def _html(lin: Lineage, svg: str) -> str:
    """A caption, then the SVG as an image: a data: URL survives the sanitiser of a notebook
    that is not trusted, where inline <svg> would be removed."""
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    image = (f'<div><img src="data:image/svg+xml;base64,{data}" alt="{esc(lin._title())}" '
             f'style="max-width:100%"></div>')
    return (f'<div class="nbt-static" data-nbt-static="lineage" style="{_BOX}">'
            f"{_caption_html(lin)}{image}</div>")


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def _caption_html(lin: Lineage) -> str:
    f = lin.focused
    n_runs = sum(1 for n in lin.nodes if n.kind == "run")
    n_versions = sum(1 for n in lin.nodes if n.kind == "artifact")
    if f.kind == "artifact":
        info = lin._caption
        bits = [f.type or "", f"{info.get('files', 0)} file{'s' if info.get('files') != 1 else ''}",
                _size(info.get("size") or 0)]
        if f.aliases:
            bits.append("aliases " + ", ".join(f.aliases))
        bits.append(f"project {f.project}")
        head = f"<b>{esc(f.label)}</b> <span style=\"color:#666\">· {esc(' · '.join(bits))}</span>"
        doc = info.get("doc") or {}
        if doc.get("description"):
            head += f'<div style="color:#444">{esc(doc["description"])}</div>'
    else:
        head = (f"<b>run {esc(_clean(f.name))}</b> <span style=\"color:#666\">· "
                f"{esc(f.project)}/{esc(f.run_id)} · {esc(f.state)}</span>")
    note = (f"lineage: {n_versions} version{'s' if n_versions != 1 else ''}, "
            f"{n_runs} run{'s' if n_runs != 1 else ''}; inputs on the left, outputs on the right")
    if lin.truncated:
        note += f"; stopped at {len(lin.nodes)} nodes"
    return f'<div>{head}</div><div style="color:#666;font-size:11px">{esc(note)}</div>'
