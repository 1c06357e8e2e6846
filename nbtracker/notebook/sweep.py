"""The sweep panel: a sweep's trials (state, parameters, metric, duration), the best so far, a
parallel-coordinates chart, the metric against each parameter and the parameters' importance,
live in the notebook and offline.

    %tracker sweep SWEEP_ID [--storage postgresql://...]    # any sweep, also one run elsewhere
    nbtracker.agent(sweep_id, function=train)                # shows it while it runs trials

How it stays current
--------------------
- `agent()` in a notebook shows it (`agent_panel`). The agent refreshes it after each trial, and
  while the agent runs — the kernel is busy with it then — a thread of the panel reads the sweep
  every REFRESH seconds, so a trial shows as soon as it starts. `refresh(final=True)`, at the
  agent's end, stops that thread.
- `%tracker sweep ID` (`sweep_panel`) shows any sweep, also one that agents in other processes or
  on other machines run: the front end asks for a refresh every few seconds while a view of the
  panel is on the page (one request at a time), and the kernel answers when it is idle. A panel
  nobody looks at costs nothing, and reading the sweep never competes with the user's own cells
  (while a cell runs, the panel waits). The agent's panel keeps refreshing this way once the
  agent has returned.
- A refresh reads `Sweep.view()`; the widget's `sweep` trait is set only when something changed
  (a running trial's duration grows in the browser). The importance (`Sweep.importance`,
  Optuna's) is computed again only when the number of finished trials with a metric value changed, at most
  every IMPORTANCE_EVERY seconds (and at the agent's end); when it fails, the panel keeps the
  last one and says why.

The static form
---------------
`sweep_bundle(view)`: the header, the best trial, the charts as SVG images and a table of the
trials (best first, at most STATIC_ROWS), every user text escaped. It is carried beside the
widget view (as a run table's); the kernel sends the front end the current one after a change
(`refreshed` messages, at most every FORM_EVERY seconds), and the document saves that one in
place of the widget view. At the agent's end the output itself is updated with it, for
front ends that run no widget code (nbclient).
"""

from __future__ import annotations

import math
import threading
import time
import warnings
from typing import Any

from ..charts import sweep_svg
from ..charts.svg import stack_svg
from . import static
from .contract import RefreshedMessage
from .widgets import SweepPanel, jsonable

__all__ = ["SweepFeed", "agent_panel", "sweep_bundle", "sweep_panel"]

# Optuna's importance says so when all trials tie; the panel asks after every trial, and shows
# the equal shares itself
warnings.filterwarnings("ignore", message="Target and region quantiles select the same set",
                        category=UserWarning)

REFRESH = 1.0  # seconds between the agent panel's own refreshes (and at least between two)
FORM_EVERY = 2.0  # seconds between two static forms sent to the front end
IMPORTANCE_EVERY = 2.0  # seconds between two importance computations while trials finish
QUEUED_SHOWN = 50  # queued trials listed (a grid enqueues every point); the rest are counted
STATIC_ROWS = 30  # trials in the static form's table
STATIC_LINES = 2000  # trials drawn in the static form's charts (the best and the latest)


class _NoWidget:
    """Where the widget would be when the panel is drawn statically (Colab, or
    NBTRACKER_NOTEBOOK_PANEL=static): holds the view, sends nothing."""

    comm = True

    def __init__(self) -> None:
        self.sweep: dict = {}

    def send(self, msg: dict, buffers: Any = None) -> None:
        pass

    def on_msg(self, fn: Any) -> None:
        pass


class SweepFeed:
    """Reads a sweep (`engine.Sweep`) into its panel; see the module doc.

    >>> feed = SweepFeed(open_sweep("k3x9q2ab")); display(feed.panel)
    """

    def __init__(self, sweep: Any, widget: bool = True):
        self.sweep = sweep
        self.panel: Any = SweepPanel() if widget else _NoWidget()
        self.view: dict = {}
        self.read_error: Exception | None = None  # why the last read failed
        self.handles: list = []  # display handles of this panel's outputs
        self._lock = threading.RLock()
        self._sig: Any = None
        self._form_sig: Any = None  # the view the last form sent was made from
        self._form_at = 0.0
        self._last = 0.0
        self._importance: dict | None = None
        self._importance_n = -1  # finished trials it was computed from (-1: never)
        self._importance_at = 0.0
        self._importance_error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.panel.on_msg(self._on_msg)
        with self._lock:  # the first view and form, sent with the widget's state when shown
            self.view = self._safe_read(False)
            self._sig = self._form_sig = self._signature(self.view)
            self._form_at = self._last = time.monotonic()
            if isinstance(self.panel, SweepPanel):
                self.panel.sweep = self.view
                self.panel.static = self.static_bundle()

    # -- reading the sweep --------------------------------------------------------------------
    def _read(self, final: bool) -> dict:
        v = self.sweep.view(importance=False)
        finished = sum(1 for t in v["trials"] if t["state"] == "finished" and t["value"] is not None)
        due = final or self._importance_n < 0 or (
            time.monotonic() - self._importance_at >= IMPORTANCE_EVERY)
        if v["metric"] is not None and finished != self._importance_n and due:
            self._importance_at = time.monotonic()
            try:
                self._importance = self.sweep.importance()
                self._importance_error = None
            except Exception as e:  # the panel shows the rest, and the last importance
                self._importance_error = f"{type(e).__name__}: {e}"
            self._importance_n = finished
        v["importance"] = self._importance
        if self._importance is not None:
            v["importance_trials"] = self._importance_n
        if self._importance_error:
            v["error"] = f"parameter importance not computed: {self._importance_error}"
        queued = [t for t in v["trials"] if t["state"] == "queued"]
        if len(queued) > QUEUED_SHOWN:
            hidden = {t["number"] for t in queued[QUEUED_SHOWN:]}
            v["trials"] = [t for t in v["trials"] if t["number"] not in hidden]
            v["queued_hidden"] = len(hidden)
        return jsonable(v)

    def refresh(self, final: bool = False, reply: bool = False, form: bool = False) -> bool:
        """Read the sweep again; whether the panel changed. `final` (the agent's end): stop
        following, compute the importance and put the static form in the outputs. `reply`:
        answer the front end's request (`form`: with the static form, changed or not)."""
        if final:
            self._stop.set()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(10.0)
        with self._lock:
            self._last = time.monotonic()
            view = self._safe_read(final)
            changed = self._signature(view) != self._sig
            if changed:
                self._sig = self._signature(view)
                self.view = view
                if isinstance(self.panel, SweepPanel):
                    self.panel.sweep = view
            bundle = None
            stale = self._form_sig != self._sig
            if final or form or (stale and time.monotonic() - self._form_at >= FORM_EVERY):
                bundle = self.static_bundle()
                self._form_sig, self._form_at = self._sig, time.monotonic()
            if isinstance(self.panel, SweepPanel):
                if bundle is not None:
                    self.panel.static = bundle
                if reply or bundle is not None:
                    self.panel.send(RefreshedMessage(type="refreshed", reply=reply, form=bundle))
            if final:
                self._show_final(bundle or self.static_bundle())
            elif changed and not isinstance(self.panel, SweepPanel) and self.handles:
                shown = self.static_bundle()  # static mode: the image is the panel
                for handle in self.handles:
                    handle.update(shown, raw=True)
        return changed

    def _safe_read(self, final: bool) -> dict:
        try:
            view = self._read(final)
            self.read_error = None
            return view
        except Exception as e:  # never a broken panel: the last view, and why it is old
            self.read_error = e
            return {**self.view, "error": f"could not read sweep {self.sweep.id}: "
                                          f"{type(e).__name__}: {e}"} if self.view else {}

    @staticmethod
    def _signature(view: dict) -> Any:
        """What a change is: anything but the clock and running trials' durations."""
        trials = view.get("trials") or []
        return {**view, "now": None, "trials": [
            {**t, "duration": None} if t.get("state") == "running" else t for t in trials]}

    def _on_msg(self, widget: Any, content: Any, buffers: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "refresh":
            # a request that waited while a refresh ran (the agent's) is answered all the same
            self.refresh(reply=True, form=bool(content.get("form")))

    # -- following an agent --------------------------------------------------------------------
    def follow(self) -> None:
        """Read the sweep every REFRESH seconds until `refresh(final=True)` (the kernel is busy
        with the agent: the front end's requests wait until it is done)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="nbtracker-sweep-panel", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(REFRESH):
            if self.panel.comm is None:  # the widget was closed
                return
            try:
                self.refresh()
            except Exception:  # never let the panel reach the agent
                pass

    def agent_refresh(self, final: bool = False) -> None:
        """After a trial: refresh unless a refresh ran less than REFRESH seconds ago (the
        following thread catches up), so a sweep of quick trials is not slowed by its panel."""
        if final or self._thread is None or time.monotonic() - self._last >= REFRESH:
            self.refresh(final=final)

    # -- showing it ----------------------------------------------------------------------------
    def static_bundle(self) -> dict:
        return sweep_bundle(self.view)

    def displayable(self) -> Any:
        """What `display()` takes: the widget with its static form beside it, or in static
        mode the static form alone."""
        if isinstance(self.panel, SweepPanel):
            return self.panel
        return _Static(self.static_bundle())

    def show(self) -> None:
        from IPython.display import display

        if isinstance(self.panel, SweepPanel):
            self.handles.append(display(self.displayable(), display_id=True))
        else:
            self.handles.append(display(self.static_bundle(), raw=True, display_id=True))

    def _show_final(self, bundle: dict) -> None:
        for handle in self.handles:
            try:
                if isinstance(self.panel, SweepPanel):
                    handle.update(self.panel)  # the widget, and the final static form beside it
                else:
                    handle.update(bundle, raw=True)
            except Exception:
                pass


class _Static:
    def __init__(self, bundle: dict):
        self.bundle = bundle

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict:
        return self.bundle


class _AgentPanel:
    """What the agent holds: `refresh(final=False)` after each trial and at its end."""

    def __init__(self, feed: SweepFeed):
        self.feed = feed

    def refresh(self, final: bool = False) -> None:
        self.feed.agent_refresh(final=final)


def agent_panel(sweep: Any) -> _AgentPanel:
    """Show the panel of the sweep an agent is about to run (sweeps/agent.py calls it in a
    notebook) and follow it while the agent runs."""
    from .live import panel_mode

    feed = SweepFeed(sweep, widget=panel_mode() != "static")
    feed.show()
    feed.follow()
    return _AgentPanel(feed)


def sweep_panel(sweep_id: str, storage: str | None = None) -> Any:
    """The live panel of a sweep (`%tracker sweep ID`): any sweep of the local store, or of
    `storage` (a PostgreSQL URL), also one that agents elsewhere run.

    Args:
        sweep_id: "ID", "project/ID" or "entity/project/ID".
        storage: the sweep's PostgreSQL URL when it was made on another machine.

    >>> nbtracker.notebook.sweep_panel("k3x9q2ab")
    """
    from ..errors import UsageError
    from ..sweeps.engine import _hide, open_sweep
    from .live import panel_mode

    feed = SweepFeed(open_sweep(sweep_id, storage=storage), widget=panel_mode() != "static")
    e = feed.read_error
    if not feed.view and e is not None:  # nothing to show: why, in one line
        if isinstance(e, UsageError):  # e.g. its trials cannot be read, naming the sweep
            raise e
        why = (str(e).strip().splitlines() or [""])[0]
        url = feed.sweep.url
        raise UsageError(f"sweep {feed.sweep.id} cannot be read: {type(e).__name__}: "
                         f"{_hide(why, url) if url else why}") from None
    shown = feed.displayable()
    if isinstance(shown, SweepPanel):
        shown.feed = feed
    return shown


# -- the static form ---------------------------------------------------------------------------

_STATE_COLORS = {"finished": "#2e7d32", "failed": "#c62828", "crashed": "#c62828",
                 "running": "#1565c0", "pruned": "#92400e", "interrupted": "#92400e",
                 "cancelled": "#92400e", "paused": "#92400e"}
_COUNT_ORDER = ("running", "finished", "pruned", "failed", "crashed", "interrupted", "queued")


def counts_text(view: dict) -> str:
    """"12 trials: 10 finished, 1 running, 1 failed · 8 left"."""
    counts = view.get("counts") or {}
    total = sum(n for k, n in counts.items() if k != "queued")
    parts = [f"{counts[k]} {k}" for k in _COUNT_ORDER if counts.get(k)]
    parts += [f"{n} {k}" for k, n in sorted(counts.items()) if k not in _COUNT_ORDER and n]
    text = f"{total} trial{'s' if total != 1 else ''}" + (f": {', '.join(parts)}" if parts else "")
    if view.get("remaining") is not None:
        text += f" · {view['remaining']} left"
    return text


def _best(view: dict) -> dict | None:
    b = view.get("best")
    return next((t for t in view.get("trials") or [] if t["number"] == b), None) if b is not None else None


def _params_text(t: dict, names: list[str]) -> str:
    return ", ".join(f"{k}={sweep_svg.label(t['params'][k])}" for k in names if k in t["params"])


def best_text(view: dict) -> str:
    metric = view.get("metric")
    if metric is None:
        return "no metric: the sweep names none, so no trial is best"
    best = _best(view)
    if best is None:
        return f"best: no finished trial with {metric['name']} yet"
    return (f"best: trial {best['number']} · {metric['name']} {static.value_text(best['value'])} "
            f"({metric['goal']}) · {_params_text(best, view.get('parameters') or [])}"
            + (f" · run {best['run_id']}" if best.get("run_id") else ""))


def duration_text(seconds: float) -> str:
    """"0.4s", "12s", "3m05s", "1h02m": tenths for a trial shorter than 10 s."""
    return f"{seconds:.1f}s" if seconds < 10 else static.duration(seconds)


def _duration(t: dict, now: float) -> float | None:
    d = t.get("duration")
    if t.get("state") == "running" and t.get("started") is not None:
        return max(0.0, now - t["started"])
    return d if isinstance(d, (int, float)) and math.isfinite(d) else None


def _charted(view: dict) -> tuple[list[dict], int]:
    """The trials the charts draw (not queued): all, or the best and latest STATIC_LINES."""
    drawn = [t for t in view.get("trials") or [] if t["state"] != "queued"]
    if len(drawn) <= STATIC_LINES:
        return drawn, 0
    metric = view.get("metric") or {}
    sign = -1.0 if metric.get("goal") == "maximize" else 1.0
    scored = sorted((t for t in drawn if sweep_svg.is_number(t["value"])),
                    key=lambda t: sign * t["value"])
    keep = {t["number"] for t in scored[: STATIC_LINES // 2]}
    for t in reversed(drawn):
        if len(keep) >= STATIC_LINES:
            break
        keep.add(t["number"])
    return [t for t in drawn if t["number"] in keep], len(drawn) - len(keep)


def sweep_svgs(view: dict) -> list[tuple[str, str]]:
    """(alt text, svg) of the static form's charts: parallel coordinates, the metric against
    each parameter, importance."""
    names = view.get("parameters") or []
    space = view.get("space") or {}
    metric = view.get("metric")
    trials, left_out = _charted(view)
    if not trials or not names:
        return []
    rows = [[t["params"].get(k) for k in names] for t in trials]
    axes = [sweep_svg.axis_for(k, [r[i] for r in rows], space.get(k)) for i, k in enumerate(names)]
    values = [t["value"] for t in trials]
    best = next((i for i, t in enumerate(trials) if t["number"] == view.get("best")), None)
    out = []
    note = f"{left_out} trials not drawn (the best and the latest are)" if left_out else None
    if metric is not None:
        m_axis = sweep_svg.axis_for(metric["name"], values)
        colors = [sweep_svg.color(g) for g in sweep_svg.goodness(values, metric["goal"])]
        svg = sweep_svg.render_parallel(axes + [m_axis], [r + [v] for r, v in zip(rows, values)],
                                        colors, best, note=note)
    else:
        svg = sweep_svg.render_parallel(axes, rows, [sweep_svg.POINT] * len(rows), None, note=note)
    out.append(("parallel coordinates", svg))
    if metric is not None and any(sweep_svg.is_number(v) for v in values):
        out.append((f"{metric['name']} against each parameter",
                    sweep_svg.render_scatters(axes, rows, values, best, metric["name"])))
    if view.get("importance"):
        out.append(("parameter importance", sweep_svg.render_importance(view["importance"])))
    return out


def _table(view: dict) -> str:
    names = view.get("parameters") or []
    metric = view.get("metric")
    now = view.get("now") or time.time()
    trials = [t for t in view.get("trials") or [] if t["state"] != "queued"]
    sign = -1.0 if metric and metric.get("goal") == "maximize" else 1.0
    # best first; trials without a value after them, newest first
    trials.sort(key=lambda t: (0, sign * t["value"], t["number"]) if sweep_svg.is_number(t["value"])
                else (1, 0.0, -t["number"]))
    td, esc = static.TD_STYLE, static.esc
    head = ["#", "state", *names, metric["name"] if metric else "metric", "duration", "run"]
    cells = "".join(f'<th style="{td}">{esc(h)}</th>' for h in head)
    body = []
    for t in trials[:STATIC_ROWS]:
        d = _duration(t, now)
        row = [str(t["number"]), t["state"], *(sweep_svg.label(t["params"][k]) if k in t["params"]
                                               else "" for k in names),
               "" if t["value"] is None else static.value_text(t["value"]),
               "" if d is None else duration_text(d), t.get("run_id") or ""]
        best = t["number"] == view.get("best")
        style = ";background:#fff3cd;font-weight:600" if best else ""
        title = f' title="{esc(t["exit"])}"' if t.get("exit") else ""
        body.append(f'<tr class="{"nbt-best" if best else ""}"{title}>' + "".join(
            f'<td style="{td}{style}">{esc(c)}</td>' for c in row) + "</tr>")
    more = len(trials) - min(len(trials), STATIC_ROWS)
    tail = f'<p style="color:#666">… and {more:,} more trial{"s" if more != 1 else ""}</p>' if more else ""
    if not trials:
        return '<div style="color:#666">no trial has run yet</div>'
    return (f'<table class="nbt-table" style="{static.TABLE_STYLE}"><thead><tr>{cells}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>{tail}')


def sweep_bundle(view: dict) -> dict:
    """The static form of a sweep's panel (a mime bundle): header, best trial, charts as SVG
    images, a table of trials; every user text escaped. `view` is the panel's view."""
    esc = static.esc
    if not view:
        return static.bundle('<div style="color:#666">the sweep could not be read</div>', None,
                             "sweep (not read)", kind="sweep")
    name, state = view.get("name") or view.get("id"), view.get("state", "")
    where = f"{view.get('project', '')}/{view.get('id', '')}"
    metric = view.get("metric")
    goal = f" · {metric['name']} ({metric['goal']})" if metric else ""
    head = (f'<div><b>sweep {esc(name)}</b> <span style="color:{_STATE_COLORS.get(state, "#555")}">'
            f'{esc(state)}</span> <span style="color:#666">· {esc(view.get("method", ""))}{esc(goal)}'
            f' · {esc(counts_text(view))} · {esc(where)}</span></div>')
    best = f'<div style="margin:2px 0 4px">{esc(best_text(view))}</div>'
    svgs = sweep_svgs(view)
    charts = "".join(static.img(svg, alt) for alt, svg in svgs)
    notes = []
    if metric is not None and not view.get("importance"):
        notes.append("parameter importance: needs 2 finished trials with the metric")
    if view.get("error"):
        notes.append(view["error"])
    note = "".join(f'<div style="color:#666">{esc(n)}</div>' for n in notes)
    body = head + best + charts + note + _table(view)
    lines = [f"sweep {name} ({where}) {state} · {view.get('method', '')}{goal} · {counts_text(view)}",
             best_text(view)]
    svg = stack_svg([s for _, s in svgs]) if svgs else None
    return static.bundle(body, svg, "\n".join(lines), kind="sweep")
