"""The sweep agent: takes trials from a sweep and runs them, one after another.

Function mode (`agent(sweep_id, function=train)`): each trial runs `train()` in this process. The
agent hands the trial to the next `nbtracker.init()` (its run id, project and parameters, as the
run's config over what `train` passes); each trial is a new run with a config of its own. The run
is finished by the agent if `train` leaves it open: `finished` when `train` returns, `failed`
(traceback printed, the agent goes on) when it raises, `interrupted` on Ctrl-C, which also stops
the agent and returns to the caller (the notebook kernel stays usable). After each trial the
garbage it left in reference cycles is collected and PyTorch's CUDA cache emptied (when torch is
loaded and sees a GPU), so memory is not held into the next trial. A trial whose `train`
never called `init()` is failed with that message; runs `train` started besides the trial's
(`init(reinit=...)`) and left open are finished with it; a run active before the agent started
stays active beside the trials' runs. `SystemExit` in `train` ends the trial, then goes on up.
One function-mode agent runs at a time in a process.

Subprocess mode (no function; `nbtracker agent SWEEP_ID`): each trial runs the sweep's
`program`/`command` as a process group of its own (`process.TrialProcess`), which is ended when
the trial ends, is pruned or the agent is interrupted or the sweep cancelled: no process is left
behind, and the memory the trial held (a GPU's included) is the operating system's again. A trial
that exits non-zero is `failed` with its exit status ("exit code 3", "signal SIGKILL"). The trial
runs in the agent's working folder (a relative `program` is found from there, as wandb's agent
finds it) with the folder of the agent's interpreter first on its PATH, so `python3` in a
`command` (`${env} python3 ${program} ${args}`) is the agent's Python, its virtualenv included.

Early termination (`early_terminate: {type: hyperband}`): the agent follows the sweep metric's
values the trial logs (in function mode through the run, in subprocess mode by reading its record
log), reports the n-th finite value as Optuna's intermediate value n, and asks the pruner. A
stopped trial ends `pruned` (its run's state too), its run kept. In function mode `run.pruned`
turns True and the function is expected to return; with `on_prune="raise"` the next `log()`
raises `nbtracker.errors.TrialPruned` instead (the agent catches it). `log()` never raises
otherwise. In subprocess mode the process group is ended.

The agent stops when `count` trials have run, the sweep has nothing left (grid done, `run_cap`
reached), it is stopped, cancelled or finished, or 5 trials in a row failed
(NBTRACKER_AGENT_MAX_FAILURES); while the sweep is paused it waits (Ctrl-C ends the wait).
Ctrl-C that lands while the agent records a trial (rather than in `train` or a wait) is held
until the record is whole (`_Held`): no trial is ever left half asked or half ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ..errors import TrialPruned, UsageError
from .engine import BEAT_SECONDS, Sweep, _finite, _own, claim, end_strays, open_sweep

POLL = 0.25  # seconds between looks at a trial process and its log
STATE_EVERY = 2.0  # seconds between looks at the sweep's state while a trial runs
JUDGE_EVERY = 1.0  # seconds between two hyperband judgements of a trial between brackets
PAUSE_POLL = 2.0


def _say(text: str) -> None:
    """One line on stderr, as every nbtracker message: none when silent (NBTRACKER_SILENT,
    set_silent), control characters in values written as escapes."""
    from ..sdk.output import say

    say(text)


def _why(e: KeyboardInterrupt) -> str:
    """How an interrupt is recorded: "Ctrl-C", or the signal a caller raised it for ("SIGTERM")."""
    return str(e) or "Ctrl-C"


def _seed_for(seed: int | None, n: int) -> int | None:
    return None if seed is None else (seed * 1_000_003 + n) % 2**32


_function_mode = threading.Lock()  # held by the function-mode agent of this process
_HELD = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


class _Held:
    """Ctrl-C (SIGINT) — and SIGTERM or SIGHUP when the caller gave them a handler, as
    `nbtracker agent` does — held while the agent keeps the sweep's books (asks for a trial, stamps
    it, finishes its run, records its outcome), so that it never leaves a trial half asked or half
    ended: running for good in a kernel that outlives the agent. What came meanwhile is handed to
    its own handler (Ctrl-C: KeyboardInterrupt) at the next point where the agent can stop:
    `deliver()`, or entering `released()`, which lets signals through as usual around the
    user's code and the waits. In the main thread only, where Python runs signal handlers."""

    def __init__(self) -> None:
        self.pending: list[int] = []
        self._old: dict[int, Any] = {}

    def __enter__(self) -> _Held:
        self._hold()
        return self

    def __exit__(self, *exc: object) -> None:
        self._let_go()

    @property
    def pressed(self) -> bool:
        return bool(self.pending)

    def _hold(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in _HELD:
            old = signal.getsignal(sig)
            if callable(old):  # a Python handler: KeyboardInterrupt's, or the caller's
                signal.signal(sig, self._note)
                self._old[sig] = old

    def _note(self, signum: int, frame: Any) -> None:
        if signum not in self.pending:
            self.pending.append(signum)

    def _let_go(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    @contextlib.contextmanager
    def released(self):
        """Signals as usual within; one that came while held is delivered on entering."""
        self._let_go()
        try:
            pending, self.pending = self.pending, []
            for sig in pending:
                signal.raise_signal(sig)  # its handler runs now (and raises, as Ctrl-C's does)
            yield
        finally:
            self._hold()

    def deliver(self) -> None:
        with self.released():
            pass


class _Trial:
    """What the agent follows while one trial runs: its pruning decision and heartbeat."""

    def __init__(self, agent: Agent, trial, run_id: str, flat: dict):
        self.agent = agent
        self.trial = trial
        self.run_id = run_id
        self.flat = flat
        self.run = None  # function mode: the trial's run, once init() made it
        self.pruned = False
        self.cancelled = False  # the sweep was cancelled while the trial ran (function mode)
        self.reason = ""
        self.raise_pruned = agent.on_prune == "raise"
        self.n = 0  # finite metric values seen
        m = agent.sweep.config.metric
        self.metric = m.name if m is not None else None
        self.judge = agent.sweep.config.early_terminate is not None and self.metric is not None
        self.history: list[float] = []  # the finite metric values, in logged order
        self._pruner = agent._pruner
        self._bracket_set = set(self._pruner.brackets) if self._pruner is not None else set()
        self._first = min(self._bracket_set) if self._bracket_set else 0
        self._next_judge = 0.0
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._beats, name="nbtracker-sweep-beat", daemon=True)
        self._beat.start()

    def _beats(self) -> None:
        """The trial's heartbeat every BEAT_SECONDS; in function mode also a look at the
        sweep's state every STATE_EVERY seconds: a cancelled sweep's trial is told through
        `run.pruned` (and `TrialPruned` from `log()` with on_prune="raise"), and ends
        `interrupted` when its function returns."""
        storage = self.agent.sweep._storage
        watch = self.agent.function is not None
        next_beat = time.monotonic() + BEAT_SECONDS
        while not self._stop.wait(STATE_EVERY if watch else BEAT_SECONDS):
            try:
                if watch and not self.pruned and self.agent.sweep.state == "cancelled":
                    self.cancelled = True
                    self.reason = "the sweep was cancelled"
                    self.pruned = True
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + BEAT_SECONDS
                    storage.set_trial_user_attr(self.trial._trial_id, "nbt_beat", time.time())
            except Exception:
                return  # the trial was ended meanwhile

    def close(self) -> None:
        self._stop.set()

    # function mode: init() calls this with the trial's run
    def attach(self, run) -> None:
        self.run = run
        try:
            run._sweep_link = self
        except AttributeError:
            return
        if self.judge and hasattr(run, "add_listener"):
            run.add_listener(self._on_row)

    def _on_row(self, keys: tuple, row: tuple) -> None:
        if self.pruned:
            return
        try:
            i = keys.index(self.metric)
        except ValueError:
            return
        self.value(row[2 + i])

    def value(self, v: Any, judge: bool = True) -> None:
        """One logged value of the sweep metric (`judge=False`: recorded for the trials judged
        later, this one not judged: it has ended).

        The values are kept here; Optuna gets only the n-th value at each bracket n (as the
        intermediate value at step n), which is all the hyperband rule reads of another trial,
        so a `log()` costs a list append, not a write to the study. The trial is judged when it
        reaches a bracket and then again at most every JUDGE_EVERY seconds (other trials'
        values at its bracket come in meanwhile: wandb's controller judges on each poll too)."""
        if self.pruned or not _finite(v):
            return
        v = float(v)
        self.history.append(v)
        self.n = n = len(self.history)
        at_bracket = n in self._bracket_set
        try:
            if at_bracket:
                self.trial.report(v, n)
            if not judge or n < self._first or self._pruner is None:
                return
            now = time.monotonic()
            if at_bracket or now >= self._next_judge:
                self._next_judge = now + JUDGE_EVERY
                self._decide()
        except Exception as e:  # the decision is lost, never the training
            self.agent._warn_once("prune", f"sweep: could not judge the trial ({e})")

    def _decide(self) -> None:
        from .hyperband import should_stop

        pruner = self._pruner
        b = pruner.bracket_of(self.n)
        if b is None:
            return
        others = []
        for t in self.agent.sweep.trials():
            if t.number == self.trial.number:
                continue
            x = t.intermediate_values.get(b)
            if _finite(x):
                others.append(x)
        et = pruner.early_terminate
        if should_stop(self.history, others, bracket=b, goal=pruner.goal, eta=et["eta"],
                       strict=et["strict"]):
            self.pruned = True
            self.reason = f"hyperband, at {self.n} values of {self.metric}"


class Agent:
    def __init__(self, sweep: Sweep, function: Callable[[], Any] | None = None,
                 count: int | None = None, on_prune: str = "flag"):
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
            raise UsageError(f"count is a number of trials (an int ≥ 0), not {count!r}")
        if on_prune not in ("flag", "raise"):
            raise UsageError(f"on_prune is 'flag' or 'raise', not {on_prune!r}")
        if function is not None and not callable(function):
            raise UsageError(f"function must be callable, not {type(function).__name__}")
        cfg = sweep.config
        if function is None and cfg.program is None and not _command_needs_no_program(cfg.command):
            raise UsageError(f"sweep {sweep.id} has no `program` (nor a `command` without "
                             "${program}): pass function= to run trials in this process")
        self.sweep = sweep
        self.function = function
        self.count = count
        self.on_prune = on_prune
        self.ran = 0
        self.interrupted = False  # stopped by Ctrl-C (or a signal the caller turned into one)
        # stopped after NBTRACKER_AGENT_MAX_FAILURES failures in a row, or a trial whose values
        # could not be drawn
        self.gave_up = False
        self.max_failures = int(os.environ.get("NBTRACKER_AGENT_MAX_FAILURES", "5") or 5)
        self._warned: set[str] = set()
        self._pruner = None
        if cfg.early_terminate is not None and cfg.metric is not None:
            from .hyperband import HyperbandPruner

            et = {k: v for k, v in cfg.raw.get("early_terminate", {}).items()}
            self._pruner = HyperbandPruner(et, goal=cfg.metric.goal)

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _say(text)

    # -- the loop ------------------------------------------------------------------------------
    def run(self) -> int:
        """Run trials until there is nothing (more) to do; returns how many ran."""
        if self.function is not None and not _function_mode.acquire(blocking=False):
            raise UsageError("one function-mode agent at a time in a process: each trial is "
                             "handed to the process's next init(), which two agents would "
                             "share; run the other agent in a process of its own")
        try:
            panel = _panel(self.sweep)
            # what the process held before the agent (a notebook's, Optuna's and SQLAlchemy's
            # objects) is set aside for the collection after each trial, which then looks at what
            # the trials made alone: a few ms instead of tens (unless the caller froze objects)
            import gc

            freeze = self.function is not None and gc.get_freeze_count() == 0
            if freeze:
                gc.freeze()
            try:
                return self._loop(panel)
            finally:
                if freeze:
                    gc.unfreeze()
                if panel is not None:
                    _refresh(panel, final=True)
        finally:
            if self.function is not None:
                _function_mode.release()

    def _loop(self, panel) -> int:
        failures = 0
        held = _Held()
        try:
            with held:
                while self.count is None or self.ran < self.count:
                    with held.released():
                        going = self._wait()
                    if not going:
                        break
                    got = self._next()
                    if got is not None and held.pressed:  # not started: its point is kept
                        self._skip(self.sweep._storage.get_trial(got[0]._trial_id),
                                   "the agent was stopped before it started")
                        claim(self.sweep.id, got[0].number, mine=False)
                        got = None
                        held.deliver()
                    if got is None:
                        break
                    trial, run_id, flat = got
                    self.ran += 1
                    _say(f"sweep {self.sweep.id}: trial {trial.number} (run {run_id}) "
                         + ", ".join(f"{k}={v!r}" for k, v in flat.items()))
                    outcome, stop = self._run_one(trial, run_id, flat, held)
                    failures = failures + 1 if outcome == "failed" else 0
                    self._maybe_finished()
                    if panel is not None:
                        _refresh(panel)
                    if stop:
                        break
                    held.deliver()
                    if failures >= self.max_failures:
                        _say(f"{failures} trials in a row failed; the agent stops "
                             "(NBTRACKER_AGENT_MAX_FAILURES)")
                        self.gave_up = True
                        break
        except KeyboardInterrupt as e:
            self.interrupted = True
            _say(f"agent stopped ({_why(e)})")
        return self.ran

    def _wait(self) -> bool:
        """Wait while the sweep is paused; False when it is stopped, cancelled or finished."""
        sweep = self.sweep
        said_paused = False
        while True:
            state = sweep.state
            if state in ("stopped", "cancelled", "finished"):
                _say(f"sweep {sweep.id} is {state}; the agent stops")
                return False
            if state != "paused":
                break
            if not said_paused:
                _say(f"sweep {sweep.id} is paused; waiting for `nbtracker sweep resume {sweep.id}` "
                     "(Ctrl-C stops the agent)")
                said_paused = True
            time.sleep(PAUSE_POLL)
        return True

    def _next(self):
        """Ask the sweep for a trial: (optuna trial, run id, {dotted name: value}) or None."""
        from .space import GridExhausted, sampler, suggest_flat

        sweep, cfg = self.sweep, self.sweep.config
        sweep.recover()
        if sweep.remaining() == 0:
            _say(f"sweep {sweep.id} has nothing left to run")
            self._maybe_finished()  # e.g. resumed with nothing left: it is finished again
            return None
        study = sweep.study
        n_before = len(sweep.trials())
        study.sampler = sampler(cfg, _seed_for(sweep.seed, n_before))
        if self._pruner is not None:
            study.pruner = self._pruner
        trial = study.ask()
        claim(sweep.id, trial.number)
        try:
            if cfg.method != "grid":
                # the values depend on the seed and the trial's number (unique, also between
                # agents asking at the same moment), not on which agent asked when; Optuna
                # samples (relative params too) when the trial first asks for a value
                study.sampler = sampler(cfg, _seed_for(sweep.seed, trial.number))
            frozen = lambda: sweep._storage.get_trial(trial._trial_id)  # noqa: E731
            if cfg.run_cap is not None and sweep.counted(below=trial.number) >= cfg.run_cap:
                self._skip(frozen(), "run_cap reached")
                _say(f"sweep {sweep.id} reached its run_cap ({cfg.run_cap})")
                claim(sweep.id, trial.number, mine=False)
                return None
            try:
                flat = suggest_flat(trial, cfg)
            except GridExhausted:
                self._skip(frozen(), "the grid is done")
                _say(f"sweep {sweep.id}: every grid point is taken")
                claim(sweep.id, trial.number, mine=False)
                return None
            except Exception as e:  # (the config check refuses what is known to fail here)
                why = f"its values could not be drawn: {type(e).__name__}: {e}"
                sweep.end_trial(frozen(), "failed", exit=why)
                _say(f"sweep {sweep.id}: trial {trial.number} failed ({why}); the agent stops")
                claim(sweep.id, trial.number, mine=False)
                self.gave_up = True
                return None
            from ..util import generate_id

            run_id = generate_id(8)
            now = time.time()
            for k, v in (("nbt_run", run_id), ("nbt_agent", _own()), ("nbt_started", now),
                         ("nbt_beat", now), ("nbt_params", _jsonable(flat))):
                trial.set_user_attr(k, v)
        except BaseException:
            claim(sweep.id, trial.number, mine=False)  # let go of: the next recover() ends it
            raise
        return trial, run_id, flat

    def _skip(self, frozen, why: str) -> None:
        if self.sweep.end_trial(frozen, "skipped", exit=why):
            self.sweep.enqueue_again(frozen, "skipped")

    def _maybe_finished(self) -> None:
        from optuna.trial import TrialState

        sweep = self.sweep
        try:
            if sweep.remaining() == 0 and sweep.state == "running" and not any(
                    t.state == TrialState.RUNNING for t in sweep.trials()):
                sweep.set_state("finished")
        except Exception:
            pass

    def _end(self, t: _Trial, outcome: str, *, exit: str | None = None) -> None:
        """Tell the sweep how the trial ended, with the metric's summary value."""
        t.close()
        value = _summary_value(self.sweep, t) if outcome in ("finished", "pruned") else None
        ended = self.sweep.end_trial(self.sweep._storage.get_trial(t.trial._trial_id), outcome,
                                     value=value, exit=exit)
        if ended and outcome in ("interrupted", "skipped"):
            self.sweep.enqueue_again(self.sweep._storage.get_trial(t.trial._trial_id), outcome)
        shown = f" {self.sweep.config.metric.name}={value}" if value is not None else ""
        _say(f"sweep {self.sweep.id}: trial {t.trial.number} {outcome}{shown}"
             + (f" ({exit})" if exit else ""))

    def _run_one(self, trial, run_id: str, flat: dict, held: _Held) -> tuple[str, bool]:
        t = _Trial(self, trial, run_id, flat)
        try:
            if self.function is not None:
                return self._run_function(t, held)
            return self._run_process(t, held)
        finally:
            t.close()
            claim(self.sweep.id, trial.number, mine=False)

    # -- function mode -------------------------------------------------------------------------
    def _run_function(self, t: _Trial, held: _Held) -> tuple[str, bool]:
        from ..sdk import trial as trial_mod
        from .config import nest

        params = nest(t.flat, self.sweep.config)
        before = _active_runs()
        trial_mod.set_pending(trial_mod.Trial(self.sweep.id, t.run_id, self.sweep.project,
                                              params, t.attach))
        outcome, exit, stop = "finished", None, False
        leave = None  # SystemExit and the like: the trial is ended, then they go on up
        try:
            with held.released():
                self.function()
        except TrialPruned:
            t.pruned = True
        except KeyboardInterrupt as e:
            outcome, exit, stop = "interrupted", _why(e), True
            self.interrupted = True
        except Exception as e:
            traceback.print_exc()
            outcome, exit = "failed", f"{type(e).__name__}: {e}"
        except BaseException as e:
            leave = e
            if not (isinstance(e, SystemExit) and e.code in (None, 0)):
                outcome, exit = "failed", f"{type(e).__name__}: {e}"
        finally:
            trial_mod.set_pending(None)
        ended = self._function_ended(t, outcome, exit, stop, before)
        if leave is not None:
            raise leave
        return ended

    def _function_ended(self, t: _Trial, outcome: str, exit: str | None, stop: bool,
                        before: list) -> tuple[str, bool]:
        run = t.run
        self._close_others(before, run, outcome)
        if run is None:
            if outcome == "finished":
                outcome, exit = "failed", "the function did not call nbtracker.init()"
            self._end_unattached(t, outcome)
            self._end(t, outcome, exit=exit)
            return outcome, stop
        if outcome == "finished" and t.pruned:
            outcome, exit = ("interrupted" if t.cancelled else "pruned"), t.reason
        self._close_run(run, outcome)
        t.run = None
        _release_memory()
        self._end(t, outcome, exit=exit)
        if stop:
            _say(f"agent stopped ({exit})")
        return outcome, stop

    def _end_unattached(self, t: _Trial, outcome: str) -> None:
        """An `init()` interrupted half way may leave the trial's run on disk without handing
        it over: it ends with the trial's outcome, not as `crashed` later (when it can be: a
        run whose lock the interrupted `init()` still holds stays as it is)."""
        import gc

        from ..store.store import Store

        try:
            store = Store(self.sweep.root)
            found = store.find(self.sweep.project, t.run_id)
            if found is not None and found.status in ("running", "crashed"):
                gc.collect()
                store.end_run(found.path, outcome, _exit_code(outcome))
        except Exception:
            pass

    def _close_others(self, before: list, run, outcome: str) -> None:
        """Finish the runs other than the trial's that the function started and left open
        (`init(reinit=...)` for an evaluation, say): left active, the next trial's `init()`
        would meet them."""
        state = outcome if outcome in ("failed", "interrupted") else "finished"
        for other in _active_runs():
            if other is run or any(other is b for b in before):
                continue
            try:
                other._finish(state, _exit_code(state))
            except Exception as e:
                self._warn_once("finish-other", f"sweep: could not finish a run ({e})")

    def _close_run(self, run, outcome: str) -> None:
        """The trial's run ends with the trial's outcome, whether the function finished it
        (then the agent records the outcome after it) or left it open."""
        if getattr(run, "disabled", False):
            run.finish()  # nothing is stored; it is no longer the active run
            return
        from ..sdk.init import _forget
        from ..store.store import Store

        code = _exit_code(outcome)
        failed = None
        if not run._done:
            try:
                run._finish(outcome, code)
            except Exception as e:  # (a finish() that Ctrl-C cut short has closed the log)
                failed = e
        if failed is not None or (
                run.state != outcome and outcome in ("pruned", "failed", "interrupted")):
            # by its record log; a finish() cut short may still hold the run's lock
            run._lock.release()
            if not Store(self.sweep.root).end_run(run._path, outcome, code) and failed is not None:
                self._warn_once("finish", f"sweep: could not finish the trial's run ({failed})")
        if run in _active_runs():  # a finish() cut short left it the active run
            _forget(run)
        run._sweep_link = None

    # -- subprocess mode -----------------------------------------------------------------------
    def _run_process(self, t: _Trial, held: _Held) -> tuple[str, bool]:
        from ..store.store import Store
        from .config import nest
        from .process import TrialProcess, interpreter_path, prepare_trial

        sweep, cfg = self.sweep, self.sweep.config
        params = nest(t.flat, cfg)
        outcome, exit, stop = "finished", None, False
        with prepare_trial(cfg.command, cfg.program, params, sweep_id=sweep.id, run_id=t.run_id,
                           project=sweep.project) as prepared:
            env = dict(os.environ)
            env.update(prepared.env)
            env["PATH"] = interpreter_path(env.get("PATH"))
            env["NBTRACKER_DIR"] = str(sweep.root)
            env.pop("NBTRACKER_RUN_ID_PENDING", None)
            proc = TrialProcess.start(prepared.argv, env=env)
            try:
                sweep._storage.set_trial_user_attr(t.trial._trial_id, "nbt_proc", {
                    "pid": proc.pid, "ctime": _ctime(proc.pid)})
            except Exception:
                pass
            follow = _LogFollower(sweep.root, sweep.project, t.run_id, t.metric) if t.judge else None
            next_state = time.monotonic() + STATE_EVERY
            try:
                with held.released():  # a second Ctrl-C in proc.stop() kills at once
                    try:
                        while proc.wait(POLL) is None:
                            if follow is not None:
                                for v in follow.values():
                                    t.value(v)
                                if t.pruned:
                                    proc.stop()
                                    outcome, exit = "pruned", t.reason
                                    break
                            if time.monotonic() >= next_state:
                                next_state = time.monotonic() + STATE_EVERY
                                if sweep.state == "cancelled":
                                    proc.stop()
                                    outcome, exit, stop = ("interrupted",
                                                           "the sweep was cancelled", True)
                                    break
                        else:  # it ended by itself: what it logged since the last look counts
                            if follow is not None:  # for others
                                for v in follow.values():
                                    t.value(v, judge=False)
                    except KeyboardInterrupt as e:
                        outcome, exit, stop = "interrupted", _why(e), True
                        self.interrupted = True
                        proc.stop()
            except KeyboardInterrupt as e:  # on entering, or a second one while it was ended
                outcome, exit, stop = "interrupted", exit or _why(e), True
                self.interrupted = True
            finally:
                proc.stop()
                end_strays(sweep.id, t.run_id)  # what left the group (a daemon) ends with it
            if outcome == "finished" and proc.returncode != 0:
                outcome, exit = "failed", proc.exit_description
        store = Store(sweep.root)
        found = store.find(sweep.project, t.run_id)
        if found is not None and outcome != "finished" and found.status != outcome:
            store.end_run(found.path, outcome,
                          proc.returncode if outcome == "failed" else _exit_code(outcome))
        elif found is not None and outcome == "finished" and found.status == "running":
            pass  # alive: a daemon of the trial holds it; its state is its own
        self._end(t, outcome, exit=exit)
        if stop and self.interrupted:
            _say(f"agent stopped ({exit})")
        return outcome, stop


def _exit_code(outcome: str) -> int | None:
    """The exit code a trial's run records with its outcome (as `finish()` and hooks.py do)."""
    return {"failed": 1, "interrupted": 255}.get(outcome)


def _release_memory() -> None:
    """After a function-mode trial: what the trial left in reference cycles is collected now,
    not at some later trial, and PyTorch's CUDA cache is handed back to the driver (when torch is
    in use and sees a GPU), so the next trial, or another process, has the memory."""
    import gc

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass


def _active_runs() -> list:
    from ..sdk.init import active_runs

    return active_runs()


def _panel(sweep: Sweep):
    """In a notebook, the live sweep panel `agent()` shows (nbtracker.notebook.sweep)."""
    from ..sdk.output import in_notebook

    if not in_notebook():
        return None
    try:
        from ..notebook.sweep import agent_panel
    except ImportError:
        return None
    try:
        return agent_panel(sweep)
    except Exception as e:  # a panel never stops a sweep
        _say(f"the sweep panel could not be shown ({e})")
        return None


def _refresh(panel, final: bool = False) -> None:
    try:
        panel.refresh(final=final)
    except Exception:
        pass


class _LogFollower:
    """The finite values of `metric` a trial's run logs, read from its record log as it grows."""

    def __init__(self, root, project: str, run_id: str, metric: str):
        self.root, self.project, self.run_id, self.metric = root, project, run_id, metric
        self.path = None
        self.offset = 0

    def values(self) -> list:
        from ..store import layout
        from ..store.recordlog import ReadReport, history_values, read_records

        if self.path is None:
            from ..store.store import read_roots

            # the store's root, or a folder the trial gave init(dir=...), which it remembers
            for base in (self.root, *read_roots(self.root)):
                p = layout.run_dir(base, self.project, self.run_id) / layout.LOG_NAME
                if p.exists():
                    self.path = p
                    break
            else:
                return []
        report = ReadReport()
        out = []
        for rec in read_records(self.path, self.offset, report):
            if rec.get("t") == "history":
                v = history_values(rec).get(self.metric)
                if v is not None:
                    out.append(v)
        if report.end:
            self.offset = report.end
        return out


def _ctime(pid: int) -> float | None:
    import psutil

    try:
        return round(psutil.Process(pid).create_time(), 2)
    except psutil.Error:
        return None


def _command_needs_no_program(command) -> bool:
    return command is not None and not any("${program}" in str(c) for c in command)


def _jsonable(flat: dict) -> dict:
    import json

    return json.loads(json.dumps(flat, default=str))


def _summary_value(sweep: Sweep, t: _Trial) -> float | None:
    """The sweep metric's value in the trial's run summary (as `define_metric` summarises it)."""
    m = sweep.config.metric
    if m is None:
        return None
    from ..store.store import Store

    run = t.run
    try:
        if run is not None and not getattr(run, "disabled", False):
            found = Store(sweep.root).load(run._path)
        else:
            found = Store(sweep.root).find(sweep.project, t.run_id)
    except Exception:
        found = None
    if found is None:
        return None
    summary = found.state.summary
    try:
        v = summary.value(m.name)
    except Exception:
        v = None
    if isinstance(v, dict):  # define_metric(summary="min,max"): the goal's side of it
        best = "max" if m.goal == "maximize" else "min"
        v = next((v[k] for k in ("best", best, "last") if k in v), None)
    if v is None:
        node: Any = summary.to_dict()
        for part in m.name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        v = node
    return v if _finite(v) else None  # an int stays exact (Optuna's copy is a float)


def agent(sweep_id: str, function: Callable[[], Any] | None = None, entity: str | None = None,
          project: str | None = None, count: int | None = None, *, storage: str | None = None,
          on_prune: str = "flag") -> int:
    """Run trials of a sweep (wandb's `agent`): in this process with `function`, else each as a
    process running the sweep's `program`/`command`. Returns the number of trials run.

    Args:
        sweep_id: what `sweep()` returned ("ID", or "project/ID", "entity/project/ID").
        function: the training function; it calls `init()`, whose config holds the trial's values.
        count: the most trials to run (default: until the sweep has nothing left).
        storage: the sweep's PostgreSQL URL when it was made on another machine.
        on_prune: "flag" (`run.pruned` turns True) or "raise" (`log()` raises TrialPruned).
    """
    del entity, project  # the sweep knows its project; accepted as wandb's agent accepts them
    sweep = open_sweep(sweep_id, storage=storage)
    return Agent(sweep, function, count, on_prune).run()
