"""Console capture: what the process writes to stdout and stderr while a run is active is kept in
the run as output records (format: `store/console.py`), and nothing the user sees changes.

How text is caught: `sys.stdout` and `sys.stderr` are replaced by a proxy (a *tap*) that forwards
every call to the stream and, after a `write`, appends the text to each listening run's buffer
(one deque append; `log()` never comes here). The proxy of an `io.TextIOBase` is one too, so
`isinstance(sys.stdout, io.TextIOBase)` holds; its own class and identity are not the stream's.
logging's stream handlers made before the run (`logging.basicConfig()`), which hold the stream
itself, are pointed at the proxy while it is in place. One tap serves every run (two runs at once
each record the text; the user sees it once). When the last run stops listening the stream is put
back — if the proxy is still in `sys`; otherwise (someone wrapped it since) the proxy stays as a
plain pass-through. (A `write` attribute put on the stream object itself would catch more, but
IPython puts back the `write` it found around every cell, which drops such a hook.)

A background thread (one for all runs) turns the buffers into records every second (sooner when
64 KiB wait), and `close()` writes the rest. Overwritten lines (`\\r`, as tqdm draws its
progress bars) are collapsed to their last state: a line being overwritten is held until it ends,
the stream changes, or it has waited `HOLD_PROGRESS` seconds. A process forked from this one
(DataLoader workers) writes nothing to the parent's run.

Not caught: what bypasses `sys.stdout`/`sys.stderr` — writes to `sys.__stdout__`, to
`sys.stdout.buffer`, or to file descriptors 1 and 2 (C extensions, subprocesses).
"""

from __future__ import annotations

import io
import logging
import os
import sys
import threading
import time
import weakref
from collections import deque
from itertools import groupby
from operator import itemgetter
from typing import Any

from ..store.console import overwrite

FLUSH_EVERY = 1.0  # seconds between batches
FLUSH_SIZE = 64 * 1024  # characters waiting that wake the writer early; also a record's largest text
HOLD_PROGRESS = 5.0  # seconds a line being overwritten is held before its state is written anyway
STREAMS = ("stdout", "stderr")
_first, _second = itemgetter(0), itemgetter(1)

_getpid = os.getpid
_guard = threading.Lock()
# id(stream) -> its tap (which holds the stream) for as long as something holds the tap's proxy
# (sys, a logging handler made while it was in place, a running console): a later run puts back
# the same proxy, which whatever took hold of it may still write to. Held weakly: once nothing
# holds the proxy, the tap and the stream go (a StringIO of contextlib.redirect_stdout).
_taps: weakref.WeakValueDictionary[int, _Tap] = weakref.WeakValueDictionary()


def start(run: Any) -> Console | None:
    if getattr(run.settings, "console", "auto") == "off":
        return None
    return Console(run)


class Console:
    """Records a run's console output; `close()` stops listening and writes what is left."""

    def __init__(self, run: Any):
        self._run = run
        # appended to by the writing threads, emptied by one flusher at a time: deque's append
        # and popleft are atomic, so writers take no lock
        self._buf: deque[tuple[str, str]] = deque()
        self._size = 0  # characters waiting (a hint for waking the writer early; may be off)
        self._write_lock = threading.Lock()  # one batch at a time: the writer thread's or close()'s
        self._line = _Line()
        self._pid = _getpid()
        self._taps = attach(self)
        _writer.add(self)

    def add(self, stream: str, text: str) -> None:
        """Called by the taps in the writing thread: keep it to an append."""
        self._buf.append((stream, text))
        self._size += len(text)
        if self._size >= FLUSH_SIZE:
            self._size = 0
            _writer.wake.set()

    def flush(self, final: bool = False) -> None:
        """Write what is waiting as output records (a line being overwritten may wait)."""
        with self._write_lock:
            buf, pop = self._buf, self._buf.popleft
            batch = [pop() for _ in range(len(buf))]
            self._size = 0
            if not batch and not self._line.pending():
                return
            out = self._line.feed(batch, time.monotonic(), final)
            if out:
                self._write(out)

    def _write(self, out: list[tuple[str, str]]) -> None:
        run = self._run
        written = []
        if _getpid() != self._pid:  # a child forked outside Python's os.fork: not its run
            return
        with run._mutex:
            if run._done:
                return
            for stream, text in out:
                for i in range(0, len(text), FLUSH_SIZE):
                    part = text[i:i + FLUSH_SIZE]
                    try:
                        run._append({"t": "output", "stream": stream, "text": part})
                    except TypeError:  # lone surrogates: JSON has no way to hold them
                        part = part.encode("utf-8", "replace").decode("utf-8")
                        run._append({"t": "output", "stream": stream, "text": part})
                    written.append((stream, part))
        if run._events:
            for stream, text in written:
                run._emit("output", {"stream": stream, "text": text})

    def close(self, state: str) -> None:
        detach(self, self._taps)
        self._taps = []  # the run object may live on: it must not keep the taps (and streams)
        _writer.discard(self)
        self.flush(final=True)


class _Writer:
    """One thread for all the process's consoles: every FLUSH_EVERY seconds, or sooner when
    one has FLUSH_SIZE waiting, each writes its batch."""

    def __init__(self) -> None:
        self.consoles: tuple[Console, ...] = ()
        self.wake = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def add(self, console: Console) -> None:
        with self.lock:
            self.consoles = (*self.consoles, console)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._loop, name="nbtracker-console",
                                               daemon=True)
                self.thread.start()

    def discard(self, console: Console) -> None:
        with self.lock:
            self.consoles = tuple(c for c in self.consoles if c is not console)

    def _loop(self) -> None:
        while True:
            self.wake.wait(FLUSH_EVERY)
            self.wake.clear()
            for c in self.consoles:
                try:
                    c.flush()
                except Exception as e:  # the next batch may go through; say it once
                    c._run._warn_once("console", f"console output not recorded: {e}")


_writer = _Writer()


class _Line:
    """The line being written (shared by both streams, as on a terminal) and what the records
    say of it so far; turns batches of writes into the texts to record."""

    def __init__(self) -> None:
        self.text = ""  # the line as a terminal shows it now
        self.cursor = 0
        self.shown = ""  # the line as the records written so far leave it
        self.shown_cursor = 0
        self.stream = "stdout"  # the stream that wrote to it last
        self.since = 0.0  # monotonic time the line began to differ from what the records say
        self.redrawn = False  # a `\r` came since the records last caught up: a line being redrawn

    def pending(self) -> bool:
        return self.cursor != self.shown_cursor or self.text != self.shown

    def _show(self) -> str:
        """The text that takes a reader from what the records say to the line as it is now."""
        text, cur, shown = self.text, self.cursor, self.shown
        if self.shown_cursor == len(shown) and cur == len(text) and text.startswith(shown):
            d = text[len(shown):]
        else:
            d = "\r" + text
            if cur != len(text):
                d += "\r" + text[:cur]
        self.shown, self.shown_cursor = text, cur
        self.redrawn = False
        return d

    def _end(self) -> str:
        """The text that ends the line (the cursor no longer matters) with its newline."""
        text, shown = self.text, self.shown
        if self.shown_cursor == len(shown) and text.startswith(shown):
            d = text[len(shown):]
        else:
            d = "\r" + text
        self.text = self.shown = ""
        self.cursor = self.shown_cursor = 0
        self.redrawn = False
        return d + "\n"

    def feed(self, batch: list[tuple[str, str]], now: float, final: bool) -> list[tuple[str, str]]:
        out: list[tuple[str, list[str]]] = []

        def emit(stream: str, text: str) -> None:
            if not text:
                return
            if out and out[-1][0] == stream:
                out[-1][1].append(text)
            else:
                out.append((stream, [text]))

        # consecutive writes to one stream as one text (print() writes each piece on its own)
        for stream, group in groupby(batch, key=_first):
            text = "".join(map(_second, group))
            if not text:
                continue
            if stream != self.stream:
                if self.pending():  # the other stream's unfinished line, as it stands
                    emit(self.stream, self._show())
                self.stream = stream
            if "\r" not in text and self.cursor == len(self.text):
                # the common case, plain text appended (print, logging): no line to rebuild
                nl = text.rfind("\n")
                if not self.pending():
                    self.since = now
                if nl < 0:
                    self.text += text
                    self.cursor = len(self.text)
                    continue
                emit(stream, self._end()[:-1] + text[:nl + 1])
                self.text = text[nl + 1:]
                self.cursor = len(self.text)
                continue
            lines = text.split("\n")
            last = len(lines) - 1
            for i, piece in enumerate(lines):
                was = self.pending()
                self.text, self.cursor = overwrite(self.text, piece, self.cursor)
                if i < last:
                    emit(stream, self._end())
                else:
                    self.redrawn = self.redrawn or "\r" in piece
                    if not was and self.pending():
                        self.since = now
        if self.pending():
            if final or not self.redrawn or now - self.since >= HOLD_PROGRESS:
                emit(self.stream, self._show())
                self.since = now
        return [(s, "".join(parts)) for s, parts in out]


# -- taps --------------------------------------------------------------------------------
class _Tap:
    """Catches the writes to one stream: puts a `_Tee` in its place in `sys` and hands what is
    written through it to the listening consoles."""

    def __init__(self, name: str, stream: Any):
        self.name = name
        self.stream = stream
        self.sinks: tuple[Console, ...] = ()  # replaced, never changed in place: writers iterate it
        # a text stream's proxy is an io.TextIOBase too (isinstance checks see what they saw)
        self.proxy = (_TextTee if isinstance(stream, io.TextIOBase) else _Tee)(stream, self)
        self.handlers: list = []  # logging handlers pointed at the proxy

    def record(self, text: Any) -> None:
        # No os.getpid() here: a forked child empties `sinks` at the fork (below), and a
        # getpid per write costs more than the rest of the tap (~1 µs on this VM)
        sinks = self.sinks
        if sinks and text.__class__ is str and text:
            for sink in sinks:
                sink.add(self.name, text)

    def install(self) -> None:
        if getattr(sys, self.name, None) is self.stream:
            setattr(sys, self.name, self.proxy)
        # handlers made before the run (logging.basicConfig()) hold the stream itself
        for ref in list(getattr(logging, "_handlerList", ())):
            h = ref()
            if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is self.stream:
                h.stream = self.proxy
                self.handlers.append(h)

    def uninstall(self) -> None:
        """Put the stream back if the proxy is still where it was put; else (someone wrapped or
        replaced it since) the proxy stays, a plain pass-through."""
        if getattr(sys, self.name, None) is self.proxy:
            setattr(sys, self.name, self.stream)
        for h in self.handlers:
            if getattr(h, "stream", None) is self.proxy:
                h.stream = self.stream
        self.handlers = []


class _Tee:
    """Stands in for a stream: writes go to it first, then to the tap; everything else (flush,
    isatty, fileno, encoding, buffer, ...) is the stream's own. Attributes set on the proxy stay
    on the proxy: IPython sets `sys.stdout.write` around each cell and puts back what it found,
    which must not loop through the stream."""

    def __init__(self, stream: Any, tap: _Tap):
        self._stream = stream
        self._tap = tap

    def write(self, s):
        n = self._stream.write(s)
        sinks = self._tap.sinks
        if sinks and s.__class__ is str and s:  # as _Tap.record, one call less per write
            name = self._tap.name
            for sink in sinks:
                sink.add(name, s)
        return n

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def __getattr__(self, name):
        if name in ("_stream", "_tap"):  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self._stream, name)

    def __iter__(self):
        return iter(self._stream)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None

    def __repr__(self) -> str:
        return repr(self._stream)


class _TextTee(_Tee, io.TextIOBase):
    """The proxy of an io.TextIOBase stream: an io.TextIOBase itself, with everything
    io.TextIOBase would do on the proxy (close, closed, flush, fileno, `with`, ...) done by the
    stream, and nothing done when the proxy is collected (IOBase would close it)."""

    def __enter__(self):
        self._stream.__enter__()
        return self

    def __exit__(self, *exc):
        return self._stream.__exit__(*exc)

    def __next__(self):
        return next(self._stream)

    def __del__(self):
        pass


def _forward(name: str) -> Any:
    def method(self, *args, **kwargs):
        return getattr(self._stream, name)(*args, **kwargs)
    method.__name__ = name
    return method


for _name in ("close", "detach", "fileno", "flush", "isatty", "read", "readable", "readline",
              "readlines", "seek", "seekable", "tell", "truncate", "writable"):
    setattr(_TextTee, _name, _forward(_name))
for _name in ("closed", "encoding", "errors", "newlines"):
    setattr(_TextTee, _name, property(lambda self, _n=_name: getattr(self._stream, _n)))


def _tap_for(name: str) -> _Tap | None:
    obj = getattr(sys, name, None)
    if obj is None:
        return None
    if isinstance(obj, _Tee):
        return obj._tap
    tap = _taps.get(id(obj))
    if tap is not None and tap.stream is obj:
        tap.install()  # known from an earlier run: the same proxy goes back in
        return tap
    tap = _Tap(name, obj)
    tap.install()
    _taps[id(obj)] = tap
    return tap


def attach(console: Console) -> list[_Tap]:
    """Start handing the text written to the current stdout and stderr to `console`."""
    taps = []
    with _guard:
        for name in STREAMS:
            tap = _tap_for(name)
            if tap is not None and tap not in taps:
                tap.sinks = (*tap.sinks, console)
                taps.append(tap)
    return taps


def detach(console: Console, taps: list[_Tap]) -> None:
    with _guard:
        for tap in taps:
            tap.sinks = tuple(s for s in tap.sinks if s is not console)
            if not tap.sinks:
                tap.uninstall()  # known while its proxy is held: a later run puts it back


def _after_fork_in_child() -> None:
    global _guard, _writer
    _guard = threading.Lock()  # a thread of the parent may have held it at the fork
    _writer = _Writer()  # the parent's thread is not in this process, nor are its runs
    for tap in list(_taps.values()):
        tap.sinks = ()  # the parent's runs; this process has none of its own yet


os.register_at_fork(after_in_child=_after_fork_in_child)
