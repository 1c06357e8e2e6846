"""Optuna: track a study's trials, as optuna-integration's `WeightsAndBiasesCallback` does.

>>> from nbtracker.integrations.optuna import NbtrackerCallback
>>> study.optimize(objective, n_trials=20, callbacks=[NbtrackerCallback()])

Two ways to record a study:

- **one run for the study** (the default): a row per trial holding the objective's value(s),
  the trial's params and its `state` ("COMPLETE", "PRUNED", "FAIL"); the study's `direction`,
  `study_name`, `sampler` and `pruner` as config; the study's `best_value`, `best_params` and
  `best_trial` (multi-objective: `best_trials`, the Pareto front's numbers) in the summary as
  trials finish. A run already active (`nbtracker.init()` called first) is used and left open;
  otherwise the callback starts one at the first trial's end — in a notebook it shows that
  run's live panel and finishes it when the cell ends. (A run another integration started, a
  Trainer's left open by the objective, is not the user's: the study's run starts beside it;
  and a Trainer, Keras or XGBoost callback training inside the objective logs to a run of its
  own, not to the study's.)
  The row's step is the trial's number (as wandb's callback) while the run is the callback's
  own and holds only this study's trials; otherwise (a run of the user's, other rows logged in
  it, e.g. epochs from the objective, or a second study) each trial goes to the run's next step
  with `trial_number` as a value, so no row of another's is written over or merged into.
  A study after the run's first one keeps its rows, config and best under its name:
  `<study_name>/value`, `<study_name>/direction`, `<study_name>/best_value`, ….
- **one run per trial** (`as_multirun=True`), named `trial-N`, grouped by the study's name (also
  a tag): the trial's params as config; its value(s), `trial_number` and `state` as summary and
  as a logged row. A failed trial's run is `failed`. With `@callback.track_in_nbtracker()` on the
  objective, the trial's run starts with the trial, so `nbtracker.log()` inside the objective
  goes to it, as do the integrations training in it (as into a run of the user's).

The value of a trial is logged only when Optuna has one from the objective: a failed trial has
none, and a pruned trial's row carries `pruned_step` and `pruned_intermediate_value` (what Optuna
stores as a pruned trial's value) instead, so a chart of `value` holds only objective values.

Trials run in threads (`n_jobs>1`) are all recorded; in one-run mode at step = number, a trial
that ends after a later one still gets its row at its own number. In multirun mode,
`nbtracker.log()` (one current run per process) cannot tell the trials' threads apart: log with
`callback.run.log(...)`, the run of the trial running in the calling thread.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

try:
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import TrialState
except ImportError as e:  # pragma: no cover - only without the extra
    raise ImportError("nbtracker.integrations.optuna needs Optuna: "
                      "pip install 'nbtracker[optuna]'") from e

import nbtracker
from nbtracker.sdk import output

from ._attach import runs_lock, take

__all__ = ["NbtrackerCallback"]

# nbtracker.init()/finish() keep one process-wide list of runs: calls from the trials' threads
# take turns (with the other integrations' too, training in the objective)
_runs_lock = runs_lock
# run -> the names of the studies recorded in it, the first first (any callback's)
_run_studies: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class NbtrackerCallback:
    """A callback for `study.optimize(..., callbacks=[...])` that records the trials.

    Args:
        metric_name: the name of the objective's value, or one name per objective of a
            multi-objective study. A single name for several objectives is numbered
            (`value_0`, `value_1`, ...); so are the values when the list's length is not the
            number of objectives (with one warning: the study goes on).
        nbtracker_kwargs: arguments for `nbtracker.init()` (project, name, group, tags, config,
            ...), used for every run the callback starts.
        as_multirun: one run per trial instead of one run for the study.
        wandb_kwargs: the name wandb's callback gives `nbtracker_kwargs`, accepted for it.

    >>> cb = NbtrackerCallback(metric_name="val_loss", nbtracker_kwargs={"project": "hpo"})
    >>> study.optimize(objective, n_trials=50, callbacks=[cb])
    """

    def __init__(self, metric_name: str | Sequence[str] = "value",
                 nbtracker_kwargs: dict[str, Any] | None = None,
                 as_multirun: bool = False, *,
                 wandb_kwargs: dict[str, Any] | None = None) -> None:
        if wandb_kwargs is not None:  # code written for wandb's callback runs unchanged
            if nbtracker_kwargs is not None:
                raise TypeError("give nbtracker_kwargs or wandb_kwargs, not both")
            nbtracker_kwargs = wandb_kwargs
        if isinstance(metric_name, str):
            pass
        elif (isinstance(metric_name, Sequence) and metric_name
              and all(isinstance(n, str) for n in metric_name)):
            metric_name = list(metric_name)
        else:
            raise TypeError("metric_name must be a string or a non-empty sequence of strings, "
                            f"not {metric_name!r}")
        self._metric_name = metric_name
        self._kwargs = dict(nbtracker_kwargs or {})
        self._as_multirun = bool(as_multirun)
        self._lock = threading.RLock()
        self._run: Any = None  # one-run mode: the study's run
        self._owns_run = False
        self._numbered = False  # one-run mode: rows at step = trial number (see _step_of)
        self._last_numbered = -1  # the highest step a trial's row was logged at, numbered
        self._best: dict[str, tuple] = {}  # study name -> (best trial(s), their values)
        self._trial_runs: dict[int, Any] = {}  # multirun: trial number -> its open run
        self._ended: set[int] = set()  # multirun: trials whose run ended with the objective
        self._local = threading.local()
        self._warned: set[str] = set()

    # -- the public surface ------------------------------------------------------------
    @property
    def run(self) -> Any:
        """The run the calling thread's trial logs to: in multirun mode (with
        `track_in_nbtracker`), the trial's own run; otherwise the study's run (None before the
        first trial)."""
        run = getattr(self._local, "run", None)
        return run if run is not None else self._run

    def __call__(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial) -> None:
        try:
            names = self._names(study)
            if self._as_multirun:
                self._end_trial_run(study, trial, names)
            else:
                self._record_in_study_run(study, trial, names)
        except Exception as e:  # never stop the study over a record
            self._warn("record", f"optuna: trial {trial.number} could not be recorded: {e}")

    def track_in_nbtracker(self) -> Callable:
        """Decorate the objective so that it runs inside its trial's run: in multirun mode the
        run starts with the trial, and `nbtracker.log()` in the objective (with `n_jobs=1`;
        `callback.run.log()` with threads) goes to the trial's run. In one-run mode the study's
        run starts with the first trial and receives those logs.

        >>> cb = NbtrackerCallback(as_multirun=True)
        >>> @cb.track_in_nbtracker()
        ... def objective(trial):
        ...     x = trial.suggest_float("x", -10, 10)
        ...     for epoch in range(10):
        ...         nbtracker.log({"epoch_loss": (x - 2) ** 2 / (epoch + 1)})
        ...     return (x - 2) ** 2
        >>> study.optimize(objective, n_trials=10, callbacks=[cb])
        """

        def decorator(func: Callable) -> Callable:
            @functools.wraps(func)
            def wrapper(trial: optuna.trial.Trial) -> Any:
                if not self._as_multirun:
                    try:
                        self._study_run(trial.study)
                    except Exception as e:
                        self._warn("start", f"optuna: the study's run could not start: {e}")
                    return func(trial)
                self._names(trial.study)
                run = self._start_trial_run(trial.study, trial.number)
                if run is None:
                    return func(trial)
                with self._lock:
                    self._trial_runs[trial.number] = run
                run.add_listener(functools.partial(self._check_thread, run, trial.number))
                self._local.run = run
                try:
                    return func(trial)
                except optuna.TrialPruned:
                    raise  # the callback records it
                except BaseException as e:
                    # Optuna calls back after a failure only when `catch` names it: the run
                    # ends here, recorded as the trial's failure, either way
                    with self._lock:
                        self._trial_runs.pop(trial.number, None)
                        self._ended.add(trial.number)
                    ours = {"state": "FAIL", "trial_number": trial.number}
                    try:
                        self._close_trial_run(run, trial.params, ours, 1, e)
                    except Exception as e2:
                        self._warn("record", f"optuna: trial {trial.number} could not be "
                                   f"recorded: {e2}")
                    raise
                finally:
                    self._local.run = None

            return wrapper

        return decorator

    track_in_wandb = track_in_nbtracker  # wandb's callback's name for it

    # -- names and rows ----------------------------------------------------------------
    def _names(self, study: optuna.study.Study) -> list[str]:
        n = len(study.directions)
        name = self._metric_name
        if isinstance(name, str):
            return [name] if n == 1 else [f"{name}_{i}" for i in range(n)]
        if len(name) != n:  # the user's study goes on: the values are numbered instead
            numbered = ["value"] if n == 1 else [f"value_{i}" for i in range(n)]
            self._warn("names", f"optuna: the study has {n} objective(s) but metric_name names "
                       f"{len(name)} ({', '.join(name)}); the values are logged as "
                       f"{', '.join(numbered)}")
            return numbered
        return list(name)

    def _values(self, trial: Any, names: list[str]) -> dict:
        """What the trial ended with: its value(s) by name when it completed, where it stopped
        when pruned, and its state."""
        state = trial.state.name
        ours: dict[str, Any] = {}
        if state == "COMPLETE" and trial.values is not None:
            ours.update(zip(names, trial.values))
        if state == "PRUNED" and trial.last_step is not None:
            ours["pruned_step"] = trial.last_step
            ours["pruned_intermediate_value"] = trial.intermediate_values[trial.last_step]
        ours["state"] = state
        return ours

    def _row(self, params: dict, ours: dict) -> dict:
        """One logged row: the trial's params and `ours`."""
        row: dict[str, Any] = {}
        for k, v in params.items():
            if k in ours:  # a param named like one of our keys keeps its value, renamed
                self._warn(f"param:{k}", f"optuna: the param {k!r} is logged as "
                           f"'params/{k}' ({k!r} is the trial's {k})")
                k = f"params/{k}"
            row[k] = v
        row.update(ours)
        return row

    # -- one run for the study ---------------------------------------------------------
    def _study_run(self, study: optuna.study.Study) -> Any:
        """The study's run: the active run of the user's, else one this callback starts."""
        with self._lock:
            run = self._run
            if run is None or run.state != "running":
                run = self._run = None
                with _runs_lock:
                    # the user's active run; else a run of its own, beside another
                    # integration's (a Trainer's run left open by the objective); another
                    # callback's study run is over (`ended`): finished by this one
                    run, self._owns_run = take("optuna", ended=True, **self._kwargs)
                self._run, self._best = run, {}
                self._numbered, self._last_numbered = self._owns_run, -1
                if self._owns_run:
                    self._in_notebook(run, study)
            studies = _run_studies.setdefault(run, [])
            if study.study_name not in studies:
                studies.append(study.study_name)
                about = {"direction": [d.name for d in study.directions],
                         "study_name": study.study_name,
                         "sampler": type(study.sampler).__name__,
                         "pruner": type(study.pruner).__name__}
                if len(studies) > 1:  # the run's config describes its first study
                    del about["study_name"]
                    about = {f"{study.study_name}/{k}": v for k, v in about.items()}
                run.config.update(about)
            return run

    @staticmethod
    def _prefix(run: Any, study: optuna.study.Study) -> str:
        """What the keys of `study` start with in `run`: nothing for the run's first study, the
        study's name and "/" for a later one.

        Several studies in one run are told apart by prefixed keys rather than by a `study`
        value in each row: each study keeps charts of its own (a minimised and a maximised
        `value`, or different params, in one chart would read wrong), the first study's keys stay
        as they were logged before a second one came, and its config and best go under the same
        name, so one prefix finds all of a study."""
        studies = _run_studies.get(run) or [study.study_name]
        return "" if study.study_name == studies[0] else f"{study.study_name}/"

    def _step_of(self, run: Any, number: int) -> int | None:
        """The step of trial `number`'s row (caller holds the lock): its number, as wandb's
        callback, while the run is the callback's own, holds one study and nothing else was
        logged in it (the run's next step is still just past the trials' rows); else None: the
        run's next step (once None, None for good: the run holds rows of others)."""
        if self._numbered and len(_run_studies.get(run) or ()) <= 1 \
                and run.step == self._last_numbered + 1:
            self._last_numbered = max(self._last_numbered, number)
            return number
        self._numbered = False
        return None

    def _record_in_study_run(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial,
                             names: list[str]) -> None:
        run = self._study_run(study)
        ours = self._values(trial, names)
        prefix = self._prefix(run, study)
        with self._lock:  # the step chosen and the row logged together
            step = self._step_of(run, trial.number)
            if step is None:
                ours["trial_number"] = trial.number
            row = self._row(trial.params, ours)
            if prefix:
                row = {prefix + k: v for k, v in row.items()}
            if step is None:
                run.log()  # a row left open at the current step (commit=False, step=) is complete
            run.log(row, step=step, commit=True)  # complete: nothing logged later joins it
        if trial.state == TrialState.COMPLETE:
            self._update_best(run, study, trial, prefix)

    def _update_best(self, run: Any, study: optuna.study.Study,
                     trial: optuna.trial.FrozenTrial, prefix: str = "") -> None:
        # Read and written under one lock: a thread that read the best earlier cannot write it
        # over a newer one. The study is asked (a copy of a trial, or of the Pareto front) only
        # when this trial may have changed its best.
        signs = [1.0 if d == StudyDirection.MINIMIZE else -1.0 for d in study.directions]
        v = [s * x for s, x in zip(signs, trial.values)]
        with self._lock:
            known = self._best.get(study.study_name)
            if len(signs) == 1:
                if known is not None and v[0] > known[1]:
                    return
                try:
                    best = study.best_trial
                except ValueError:  # constrained, and no trial feasible yet
                    return
                if known is not None and known[0] == best.number:
                    return
                self._best[study.study_name] = (best.number, signs[0] * best.value)
                run.summary.update({f"{prefix}best_value": best.value,
                                    f"{prefix}best_params": best.params,
                                    f"{prefix}best_trial": best.number})
            else:
                if known is not None and any(_dominates(f, v) for f in known[1]):
                    return
                front = sorted(study.best_trials, key=lambda t: t.number)
                numbers = [t.number for t in front]
                if known is not None and known[0] == numbers:
                    return
                self._best[study.study_name] = (
                    numbers, [[s * x for s, x in zip(signs, t.values)] for t in front])
                run.summary.update({f"{prefix}best_trials": numbers})

    def _in_notebook(self, run: Any, study: optuna.study.Study) -> None:
        """In a notebook, a run the callback started shows its live panel and ends with the
        cell that runs the study (or the first later cell with no trial of the study left
        running)."""
        if not output.in_notebook() or getattr(run, "disabled", False):
            return
        try:
            from IPython import get_ipython
            from IPython.display import display

            display(run)
            ip = get_ipython()

            def end_with_cell(result: Any = None) -> None:
                try:
                    if study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
                        return  # the study goes on (a background thread): a later cell ends it
                except Exception:
                    pass
                ip.events.unregister("post_run_cell", end_with_cell)
                with _runs_lock:
                    run.finish()

            ip.events.register("post_run_cell", end_with_cell)
        except Exception as e:
            self._warn("notebook", f"optuna: the study's panel could not be shown: {e}")

    # -- one run per trial -------------------------------------------------------------
    def _start_trial_run(self, study: optuna.study.Study, number: int) -> Any:
        kwargs = dict(self._kwargs)
        name = kwargs.pop("name", None)
        kwargs["name"] = f"{name}-trial-{number}" if name else f"trial-{number}"
        kwargs["group"] = kwargs.get("group") or study.study_name
        tags = kwargs.get("tags") or ()
        kwargs["tags"] = [*([tags] if isinstance(tags, str) else tags), study.study_name]
        kwargs["reinit"] = "create_new"  # a run of the user's stays active after the trial
        try:
            with _runs_lock:
                return nbtracker.init(**kwargs)
        except Exception as e:
            self._warn("start", f"optuna: trial {number}'s run could not start: {e}")
            return None

    def _end_trial_run(self, study: optuna.study.Study, trial: optuna.trial.FrozenTrial,
                       names: list[str]) -> None:
        with self._lock:
            if trial.number in self._ended:
                self._ended.discard(trial.number)
                return
            run = self._trial_runs.pop(trial.number, None)
        if run is None:  # not decorated: the trial's run is made now
            run = self._start_trial_run(study, trial.number)
            if run is None:
                return
        ours = {**self._values(trial, names), "trial_number": trial.number}
        self._close_trial_run(run, trial.params, ours, 1 if ours["state"] == "FAIL" else None)

    def _close_trial_run(self, run: Any, params: dict, ours: dict, exit_code: int | None,
                         err: BaseException | None = None) -> None:
        try:
            run.config.update(params)
            run.log(self._row(params, ours))
            run.summary.update(ours)
            if err is not None:
                run.summary["error"] = f"{type(err).__name__}: {err}"
        finally:
            with _runs_lock:
                if err is None:
                    run.finish(exit_code=exit_code)
                else:
                    run.__exit__(type(err), err, err.__traceback__)  # failed, or interrupted

    def _check_thread(self, run: Any, number: int, keys: tuple, row: tuple) -> None:
        """Called by `run` after each logged row, in the logging thread: a row logged by the
        objective of another trial (threads: `nbtracker.log()` reaches the newest run) is
        named, once."""
        mine = getattr(self._local, "run", None)
        if mine is not None and mine is not run:
            self._warn("threads", f"optuna: trials run in parallel and nbtracker.log() went to "
                       f"the newest run (trial {number}'s) from another trial's objective; log "
                       "with callback.run.log(...) to reach the trial's own run")

    def _warn(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            output.warn(msg)


def _dominates(a: list[float], b: list[float]) -> bool:
    """Whether values `a` dominate `b` (both as minimised): no worse anywhere, better somewhere."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))
