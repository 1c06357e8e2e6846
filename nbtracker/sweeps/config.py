"""A sweep configuration in wandb's format, parsed and validated before anything runs.

`parse_sweep(config)` takes a dict, YAML text, or the path of a `.yaml`/`.yml`/`.json` file and
returns a frozen `SweepConfig`, or raises one `SweepConfigError` listing every problem found, each
naming the key path (`parameters.opt.parameters.name.values: ...`) and what is wrong.

The format is wandb's sweep schema (wandb/sweeps `config/schema.json`):

- `method`: `grid | random | bayes` (required);
- `metric`: `{name, goal: minimize|maximize (default minimize), target}`; `impute` and
  `impute_while_running` are accepted and kept in `raw`; required by `bayes` and by
  `early_terminate`;
- `parameters` (required): each entry is either a group `{parameters: {...}}` or a leaf.
  A leaf's `distribution` is inferred when absent, as wandb infers it: `value` → `constant`,
  `values` → `categorical` (`categorical_w_probabilities` with `probabilities`), `min`/`max`
  both ints → `int_uniform`, otherwise → `uniform`. Defaults: `mu=0`, `sigma=1`, `a=b=1`,
  `q=1.0` (a float: a `q_*` value is an int only when `q` is written as an int).
  `log_uniform`, `q_log_uniform` and `inv_log_uniform` take natural-log bounds (the value lies in
  `[exp(min), exp(max)]`, resp. `[exp(-max), exp(-min)]`); their `_values` forms take the values;
- `early_terminate`: `{type: hyperband, min_iter | max_iter + s, eta (default 3), strict (default
  true)}`;
- `run_cap` (int > 0), `program`, `command` (a list; whole items `${env}`, `${interpreter}`,
  `${program}`, `${args}`, `${args_no_equals}`, `${args_no_hyphens}`, `${args_no_boolean_flags}`,
  `${args_append_hydra}`, `${args_override_hydra}`, `${args_json}`, `${args_json_file}` are
  macros), `name`, `description`, `project`, `entity`; `apiVersion`, `kind` and `controller` are
  accepted and kept in `raw`.

Where we are stricter than wandb, it is to refuse what would fail or mislead later: grid sweeps take
only `value`, `values` (no probabilities), `int_uniform` and `q_uniform` (as wandb); bayes and
hyperband need a metric; an unknown `${macro}` or `${program}` without `program` is an error (wandb
drops it silently); beta's `a`/`b` and normal's `sigma` must be > 0; numbers must be finite; keys of
wandb Launch and custom schedulers (`job`, `image_uri`, `scheduler`, `metrics`, `method: custom`)
are refused as unsupported. YAML is read with YAML 1.2 floats, so `1e-5` is a number (PyYAML's
YAML 1.1 reads it as the string "1e-5").

A grid enumerates `int_uniform` as `min..max` and `q_uniform` as the multiples of `q` that
sampling can produce (`round(min/q)*q .. round(max/q)*q`, both ends included), parameters sorted by
path with the last varying fastest (wandb's order), equal values taken once.

    >>> cfg = parse_sweep({"method": "grid", "parameters": {
    ...     "lr": {"values": [0.1, 0.01]}, "opt": {"parameters": {"name": {"values": ["adam", "sgd"]}}}}})
    >>> cfg.grid_points()[1]
    {'lr': 0.1, 'opt.name': 'sgd'}
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import math
import os
import re
import statistics
from decimal import Decimal
from typing import Any

__all__ = [
    "COMMAND_MACROS",
    "DISTRIBUTIONS",
    "GRID_LIMIT",
    "Hyperband",
    "Metric",
    "Parameter",
    "SweepConfig",
    "SweepConfigError",
    "nest",
    "parse_sweep",
    "quantize",
]

COMMAND_MACROS = (
    "env", "interpreter", "program", "args", "args_no_equals", "args_no_hyphens",
    "args_no_boolean_flags", "args_append_hydra", "args_override_hydra", "args_json", "args_json_file",
)
_INT_EXACT = 2**53
GRID_LIMIT = 100_000  # a larger grid is almost surely a mistake (an int_uniform over a wide range)

# distribution → (required keys, optional keys with defaults)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {}),
    "categorical_w_probabilities": (("values", "probabilities"), {}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), {"q": 1.0}),
    "log_uniform": (("min", "max"), {}),
    "log_uniform_values": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), {"q": 1.0}),
    "q_log_uniform_values": (("min", "max"), {"q": 1.0}),
    "inv_log_uniform": (("min", "max"), {}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "log_normal": ((), {"mu": 0.0, "sigma": 1.0}),
    "q_log_normal": ((), {"mu": 0.0, "sigma": 1.0, "q": 1.0}),
    "beta": ((), {"a": 1.0, "b": 1.0}),
    "q_beta": ((), {"a": 1.0, "b": 1.0, "q": 1.0}),
}
_GRID_OK = {"constant", "categorical", "int_uniform", "q_uniform"}
_TOP_KEYS = {
    "method", "metric", "parameters", "early_terminate", "run_cap", "program", "command", "name",
    "description", "project", "entity", "apiVersion", "kind", "controller",
}
_UNSUPPORTED = {
    "job": "wandb Launch jobs are not supported; use program/command",
    "image_uri": "wandb Launch images are not supported; use program/command",
    "scheduler": "custom schedulers are not supported; use method grid, random or bayes",
    "metrics": "multi-objective sweeps are not supported; use one metric",
}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # wandb's parameter name pattern
_MAX_EXP = math.log(1.7976931348623157e308)
# space.py draws normal and log-normal values at a quantile u in [NORMAL_TAIL, 1 - NORMAL_TAIL]
# (mu ± 7.03 sigma), so every value is finite when the two ends are
NORMAL_TAIL = 1e-12
_NORMAL_Z = statistics.NormalDist().inv_cdf(1.0 - NORMAL_TAIL)


class SweepConfigError(ValueError):
    """An invalid sweep configuration; `problems` lists every problem, each naming its key path."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        super().__init__("invalid sweep config:\n" + "\n".join(f"  - {p}" for p in self.problems))


@dataclasses.dataclass(frozen=True)
class Metric:
    name: str
    goal: str = "minimize"
    target: float | None = None


@dataclasses.dataclass(frozen=True)
class Hyperband:
    min_iter: int | None = None
    max_iter: int | None = None
    s: int | None = None
    eta: int | float = 3
    strict: bool = True
    type: str = "hyperband"


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One leaf of the search space. `path` is its key path; `name` the dotted path (Optuna's name)."""

    path: tuple[str, ...]
    distribution: str
    value: Any = None
    values: tuple | None = None
    probabilities: tuple[float, ...] | None = None
    min: int | float | None = None
    max: int | float | None = None
    mu: int | float | None = None
    sigma: int | float | None = None
    a: int | float | None = None
    b: int | float | None = None
    q: int | float | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)

    def grid_values(self) -> list:
        """The values a grid takes for this parameter, equal values once, in the given order."""
        d = self.distribution
        if d == "constant":
            return [copy.deepcopy(self.value)]
        if d == "categorical":
            seen, out = set(), []
            for v in self.values:
                key = _canonical(v)
                if key not in seen:
                    seen.add(key)
                    out.append(copy.deepcopy(v))
            return out
        if d == "int_uniform":
            return list(range(self.min, self.max + 1))
        if d == "q_uniform":
            lo, hi = round(self.min / self.q), round(self.max / self.q)
            return [quantize(k * self.q, self.q) for k in range(lo, hi + 1)]
        raise ValueError(f"{self.name}: a {d} parameter has no grid values")

    def grid_size(self) -> int:
        d = self.distribution
        if d == "int_uniform":
            return self.max - self.min + 1
        if d == "q_uniform":
            return round(self.max / self.q) - round(self.min / self.q) + 1
        return len(self.grid_values())


@dataclasses.dataclass(frozen=True)
class SweepConfig:
    """A validated sweep. `parameters` are the leaves sorted by path; `raw` is the config as given."""

    method: str
    parameters: tuple[Parameter, ...]
    metric: Metric | None = None
    early_terminate: Hyperband | None = None
    run_cap: int | None = None
    program: str | None = None
    command: tuple | None = None
    name: str | None = None
    description: str | None = None
    project: str | None = None
    entity: str | None = None
    raw: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def parameter(self, name: str) -> Parameter:
        """The leaf with dotted name `name`."""
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    def grid_size(self) -> int:
        return math.prod(p.grid_size() for p in self.parameters)

    def grid_points(self) -> list[dict]:
        """Every combination as `{dotted name: value}`, in wandb's order (see the module doc).

        Values are fresh copies, so a caller may change a point without touching another one.
        """
        names = [p.name for p in self.parameters]
        columns = [p.grid_values() for p in self.parameters]
        return [dict(zip(names, copy.deepcopy(combo))) for combo in itertools.product(*columns)]


def nest(flat: dict[str, Any], config: SweepConfig) -> dict:
    """`{dotted name: value}` → the nested run config (`{"opt": {"name": "adam"}}`)."""
    out: dict = {}
    for p in config.parameters:
        if p.name not in flat:
            continue
        node = out
        for key in p.path[:-1]:
            node = node.setdefault(key, {})
        node[p.path[-1]] = flat[p.name]
    return out


def quantize(x: float, q: int | float) -> int | float:
    """`x` rounded to the nearest multiple of `q` (halves to even, as numpy's round in wandb).

    An int when `q` is an int (wandb's rule); a float multiple is computed in decimal so that
    `3 * 0.1` gives `0.3`, not `0.30000000000000004`.
    """
    k = round(x / q)
    if isinstance(q, int) and not isinstance(q, bool):
        return k * q
    return float(Decimal(repr(float(q))) * k)


def parse_sweep(config: dict | str | os.PathLike) -> SweepConfig:
    """Parse and validate a sweep configuration.

    Args:
        config: a dict; YAML (or JSON) text; or the path (str or PathLike) of a `.yaml`, `.yml` or
            `.json` file.

    Returns:
        The frozen `SweepConfig`.

    Raises:
        SweepConfigError: listing every problem found, each naming its key path.

    Example:
        >>> cfg = parse_sweep("method: random\\nparameters: {lr: {min: 0.0001, max: 0.1}}")
        >>> cfg.parameter("lr").distribution
        'uniform'
    """
    if isinstance(config, os.PathLike) or (
        isinstance(config, str) and "\n" not in config
        and config.strip().lower().endswith((".yaml", ".yml", ".json"))
    ):
        path = os.fspath(config)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise SweepConfigError([f"cannot read the sweep file {path!r}: {e.strerror or e}"]) from None
        data = _load_text(text, json_only=path.lower().endswith(".json"), source=path)
    elif isinstance(config, str):
        data = _load_text(config, json_only=False, source="the sweep text")
    elif isinstance(config, dict):
        data = _plain(config)
    else:
        kind = type(config).__name__
        raise SweepConfigError([f"a sweep config is a dict, YAML text or a file path, not {kind}"])
    if not isinstance(data, dict):
        raise SweepConfigError([f"a sweep config is a mapping of keys, not {type(data).__name__}"])
    return _Validator(data).run()


def _plain(v: Any) -> Any:
    """A config built in Python, with numpy values (`list(np.arange(3))`, `np.float32(0.1)`,
    `np.bool_`, arrays) as the plain Python values they stand for: the sweep keeps and compares
    its values as JSON, which has no numpy."""
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if type(v).__module__ == "numpy":
        tolist = getattr(v, "tolist", None)  # numpy scalars and arrays alike
        if callable(tolist):
            return _plain(tolist())
    return v


def _load_text(text: str, json_only: bool, source: str) -> Any:
    if json_only:
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            where = f"line {e.lineno} column {e.colno}"
            raise SweepConfigError([f"{source}: invalid JSON at {where}: {e.msg}"]) from None
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML ships with the notebook stack
        raise SweepConfigError(["reading YAML needs PyYAML: pip install pyyaml"]) from None
    try:
        return yaml.load(text, Loader=_loader(yaml))  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        where = ""
        mark = getattr(e, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1} column {mark.column + 1}"
        problem = getattr(e, "problem", None) or str(e)
        raise SweepConfigError([f"{source}: invalid YAML{where}: {problem}"]) from None


_LOADER = None


def _loader(yaml):
    """A SafeLoader reading floats as YAML 1.2 does (`1e-5` is a float, not a string)."""
    global _LOADER
    if _LOADER is None:
        class Loader(yaml.SafeLoader):
            pass

        Loader.yaml_implicit_resolvers = {
            k: [r for r in v if r[0] != "tag:yaml.org,2002:float"]
            for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
        }
        Loader.add_implicit_resolver(
            "tag:yaml.org,2002:float",
            re.compile(r"""^(?:[-+]?(?:\.[0-9]+|[0-9][0-9_]*(?:\.[0-9_]*)?)(?:[eE][-+]?[0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$""", re.X),
            list("-+0123456789."),
        )
        _LOADER = Loader
    return _LOADER


def _canonical(v: Any) -> str:
    """A key under which equal grid values compare equal (wandb: 3.0 and 3 are one value)."""
    def norm(x):
        if isinstance(x, float) and x.is_integer():
            return int(x)
        if isinstance(x, dict):
            return {str(k): norm(val) for k, val in x.items()}
        if isinstance(x, (list, tuple)):
            return [norm(i) for i in x]
        return x
    try:
        return json.dumps(norm(v), sort_keys=True, allow_nan=True)
    except (TypeError, ValueError):
        return repr(v)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _show(x: Any) -> str:
    s = repr(x)
    return s if len(s) <= 60 else s[:57] + "..."


class _Validator:
    def __init__(self, data: dict):
        self.data = data
        self.problems: list[str] = []

    def err(self, where: str, what: str) -> None:
        self.problems.append(f"{where}: {what}" if where else what)

    def string(self, key: str) -> str | None:
        v = self.data.get(key)
        if v is not None and not isinstance(v, str):
            self.err(key, f"must be a string, not {_show(v)}")
            return None
        return v

    def number(self, where: str, v: Any, *, integer: bool = False) -> bool:
        if integer and not _is_int(v):
            hint = " (YAML reads it as text)" if isinstance(v, str) else ""
            self.err(where, f"must be an integer, not {_show(v)}{hint}")
            return False
        if not _is_number(v):
            hint = " (a string: write the number without quotes)" if isinstance(v, str) else ""
            self.err(where, f"must be a number, not {_show(v)}{hint}")
            return False
        if not math.isfinite(v):
            self.err(where, f"must be a finite number, not {v!r}")
            return False
        return True

    def run(self) -> SweepConfig:
        d = self.data
        for key in d:
            if key in _UNSUPPORTED:
                self.err(key, _UNSUPPORTED[key])
            elif key not in _TOP_KEYS:
                self.err(key, f"unknown key; a sweep config takes {', '.join(sorted(_TOP_KEYS))}")

        method = d.get("method")
        if "method" not in d:
            self.err("method", "missing; use grid, random or bayes")
        elif method == "custom":
            self.err("method", "custom schedulers are not supported; use grid, random or bayes")
            method = None
        elif method not in ("grid", "random", "bayes"):
            self.err("method", f"must be grid, random or bayes, not {_show(method)}")
            method = None

        metric = self.metric(d["metric"]) if "metric" in d else None
        hyperband = self.early_terminate(d["early_terminate"]) if "early_terminate" in d else None
        if method == "bayes" and metric is None and "metric" not in d:
            self.err("metric", "missing; method bayes needs a metric to optimise ({name, goal})")
        if "early_terminate" in d and "metric" not in d:
            self.err("metric", "missing; early_terminate needs a metric to compare runs by")

        params: list[Parameter] = []
        if "parameters" not in d:
            self.err("parameters", "missing; a sweep needs at least one parameter")
        else:
            self.group("parameters", (), d["parameters"], params)
        params.sort(key=lambda p: p.path)
        seen: dict[str, tuple] = {}
        for p in params:
            if p.name in seen:
                self.err(f"parameters.{p.name}", "two parameters have this dotted name "
                         f"({'/'.join(seen[p.name])} and {'/'.join(p.path)}); rename one")
            seen[p.name] = p.path

        if method == "grid":
            for p in params:
                if p.distribution == "categorical_w_probabilities":
                    self.err(self.where(p), "grid sweeps take no probabilities; "
                             "remove them or use method random")
                elif p.distribution not in _GRID_OK:
                    self.err(self.where(p), f"a {p.distribution} distribution cannot be enumerated by a "
                             "grid; grid takes value, values, int_uniform or q_uniform")
            if not self.problems:
                size = math.prod(p.grid_size() for p in params)
                if size > GRID_LIMIT:
                    self.err("parameters", f"the grid has {size} points, more than {GRID_LIMIT}")

        run_cap = d.get("run_cap")
        if run_cap is not None and self.number("run_cap", run_cap, integer=True) and run_cap <= 0:
            self.err("run_cap", f"must be > 0, not {run_cap}")

        program = self.string("program")
        command = d.get("command")
        if command is not None:
            if not isinstance(command, list):
                self.err("command", f"must be a list of strings, not {_show(command)}")
                command = None
            else:
                for i, item in enumerate(command):
                    if not (isinstance(item, str) or _is_number(item)):
                        self.err(f"command[{i}]", f"must be a string, not {_show(item)}")
                    elif isinstance(item, str) and item.startswith("${") and item.endswith("}"):
                        macro = item[2:-1]
                        if macro not in COMMAND_MACROS:
                            self.err(f"command[{i}]", f"unknown macro {item}; known: "
                                     + ", ".join("${" + m + "}" for m in COMMAND_MACROS))
                        elif macro == "program" and "program" not in d:
                            self.err("program", "missing; command uses ${program}")
                command = tuple(command)
        names = {k: self.string(k) for k in ("name", "description", "project", "entity")}

        if self.problems:
            raise SweepConfigError(self.problems)
        return SweepConfig(
            method=method, parameters=tuple(params), metric=metric, early_terminate=hyperband,
            run_cap=run_cap, program=program, command=command, raw=copy.deepcopy(d), **names,
        )

    def where(self, p: Parameter) -> str:
        return "parameters." + ".parameters.".join(p.path)

    def metric(self, m: Any) -> Metric | None:
        if not isinstance(m, dict):
            self.err("metric", f"must be a mapping {{name, goal, target}}, not {_show(m)}")
            return None
        ok = True
        for key in m:
            if key not in ("name", "goal", "target", "impute", "impute_while_running"):
                self.err(f"metric.{key}", "unknown key; metric takes name, goal, target")
                ok = False
        name = m.get("name")
        if not isinstance(name, str) or not name:
            self.err("metric.name", "missing" if name is None
                     else f"must be a non-empty string, not {_show(name)}")
            ok = False
        goal = m.get("goal", "minimize")
        if goal not in ("minimize", "maximize"):
            self.err("metric.goal", f"must be minimize or maximize, not {_show(goal)}")
            ok = False
        target = m.get("target")
        if target is not None and not self.number("metric.target", target):
            ok = False
        for key, allowed in (("impute", ("latest", "best", "worst")),
                             ("impute_while_running", ("latest", "best", "worst", "false"))):
            if key in m and m[key] not in allowed:
                self.err(f"metric.{key}", f"must be one of {', '.join(allowed)}, not {_show(m[key])}")
        return Metric(name=name, goal=goal, target=target) if ok else None

    def early_terminate(self, et: Any) -> Hyperband | None:
        w = "early_terminate"
        if not isinstance(et, dict):
            self.err(w, f"must be a mapping {{type: hyperband, ...}}, not {_show(et)}")
            return None
        ok = True
        if et.get("type") != "hyperband":
            self.err(f"{w}.type", "missing; use hyperband" if "type" not in et
                     else f"must be hyperband, not {_show(et['type'])}")
            ok = False
        for key in et:
            if key not in ("type", "min_iter", "max_iter", "s", "eta", "strict"):
                self.err(f"{w}.{key}", "unknown key; hyperband takes min_iter, max_iter, s, eta, strict")
                ok = False
        if "min_iter" in et:
            if self.number(f"{w}.min_iter", et["min_iter"], integer=True):
                if et["min_iter"] < 1:
                    self.err(f"{w}.min_iter", f"must be >= 1, not {et['min_iter']}")
                    ok = False
            else:
                ok = False
        if "max_iter" in et:
            if self.number(f"{w}.max_iter", et["max_iter"], integer=True):
                if et["max_iter"] < 1:
                    self.err(f"{w}.max_iter", f"must be >= 1, not {et['max_iter']}")
                    ok = False
            else:
                ok = False
        if "s" in et:
            if self.number(f"{w}.s", et["s"], integer=True):
                if et["s"] < 1:
                    self.err(f"{w}.s", f"must be >= 1, not {et['s']}")
                    ok = False
            else:
                ok = False
        if "min_iter" not in et and not ("max_iter" in et and "s" in et):
            self.err(w, "needs min_iter, or max_iter with s")
            ok = False
        eta = et.get("eta", 3)
        if self.number(f"{w}.eta", eta):
            if eta <= 1:
                self.err(f"{w}.eta", f"must be > 1, not {eta}")
                ok = False
        else:
            ok = False
        strict = et.get("strict", True)
        if not isinstance(strict, bool):
            self.err(f"{w}.strict", f"must be true or false, not {_show(strict)}")
            ok = False
        # hyperband.validate_early_terminate (the pruner's own check, also used outside sweeps)
        # refuses a subset of what is refused here, so a config that parses makes a pruner; here
        # the integers must be ints, there an integral float (27.0) is taken too
        if ok:  # the rest of hyperband.validate_early_terminate's rules, so the agent agrees
            if "min_iter" in et and "max_iter" in et:
                self.err(f"{w}.min_iter", "and max_iter are two ways to set the brackets: give one")
                ok = False
            elif "min_iter" in et and "s" in et:
                self.err(f"{w}.s", "counts brackets down from max_iter; with min_iter leave it out")
                ok = False
            elif "max_iter" in et and et["max_iter"] / eta < 1:
                self.err(f"{w}.max_iter", f"{et['max_iter']} / eta {eta} is below 1: no bracket is left")
                ok = False
        if not ok:
            return None
        return Hyperband(min_iter=et.get("min_iter"), max_iter=et.get("max_iter"), s=et.get("s"),
                         eta=eta, strict=strict)

    def group(self, where: str, path: tuple, params: Any, out: list[Parameter]) -> None:
        if not isinstance(params, dict):
            self.err(where, f"must be a mapping of parameter names to specs, not {_show(params)}")
            return
        if not params:
            self.err(where, "is empty; give at least one parameter")
            return
        for key, spec in params.items():
            w = f"{where}.{key}"
            if not isinstance(key, str) or not _NAME_RE.match(key):
                self.err(w, "a parameter name starts with a letter or _ and holds letters, digits, _ . -")
                continue
            if not isinstance(spec, dict):
                self.err(w, f"must be a mapping such as {{value: ...}}, {{values: [...]}} or "
                         f"{{min: ..., max: ...}}, not {_show(spec)}")
                continue
            if "parameters" in spec:
                extra = sorted(set(spec) - {"parameters"})
                if extra:
                    self.err(w, f"a parameter group takes only 'parameters', not {', '.join(extra)}")
                self.group(f"{w}.parameters", path + (key,), spec["parameters"], out)
                continue
            leaf = self.leaf(w, path + (key,), spec)
            if leaf is not None:
                out.append(leaf)

    def leaf(self, w: str, path: tuple, spec: dict) -> Parameter | None:
        if not spec:
            self.err(w, "is empty; give value, values, min/max or a distribution")
            return None
        dist = spec.get("distribution")
        if dist is None:
            if "value" in spec:
                dist = "constant"
            elif "values" in spec:
                dist = "categorical_w_probabilities" if "probabilities" in spec else "categorical"
            elif "min" in spec and "max" in spec:
                dist = "int_uniform" if _is_int(spec["min"]) and _is_int(spec["max"]) else "uniform"
            else:
                self.err(w, "cannot infer a distribution: give value, values, min and max, or distribution")
                return None
        elif dist == "categorical" and "probabilities" in spec:
            dist = "categorical_w_probabilities"
        if dist not in DISTRIBUTIONS:
            self.err(f"{w}.distribution",
                     f"unknown distribution {_show(dist)}; known: {', '.join(DISTRIBUTIONS)}")
            return None
        required, defaults = DISTRIBUTIONS[dist]
        allowed = set(required) | set(defaults) | {"distribution"}
        n0 = len(self.problems)
        for key in spec:
            if key not in allowed:
                self.err(f"{w}.{key}", f"not a key of a {dist} parameter (it takes "
                         f"{', '.join(sorted(allowed - {'distribution'})) or 'no other keys'})")
        for key in required:
            if key not in spec:
                self.err(f"{w}.{key}", f"missing; a {dist} parameter needs {' and '.join(required)}")
        if len(self.problems) > n0:
            return None
        f = {**defaults, **{k: v for k, v in spec.items() if k != "distribution"}}
        for key in ("min", "max", "mu", "sigma", "a", "b", "q"):
            if key in f and not self.number(f"{w}.{key}", f[key], integer=dist == "int_uniform"):
                return None
        if len(self.problems) > n0:
            return None

        if "min" in f and f["min"] >= f["max"]:
            self.err(w, f"min {f['min']!r} is not less than max {f['max']!r}")
        if dist == "int_uniform" and max(abs(f["min"]), abs(f["max"])) > _INT_EXACT:
            # Optuna keeps an int parameter as a float: beyond 2**53 it cannot draw every int
            self.err(w, f"int_uniform bounds must lie within ±2**53 (Optuna samples integers as "
                     f"floats), not {f['min']!r}..{f['max']!r}; list the values instead")
        if dist in ("log_uniform_values", "q_log_uniform_values", "inv_log_uniform_values") and f["min"] <= 0:
            self.err(f"{w}.min", f"must be > 0 for {dist} (the values are logarithmic), not {f['min']!r}; "
                     "log_uniform takes natural-log bounds instead")
        if dist in ("log_uniform", "q_log_uniform", "inv_log_uniform"):
            for key in ("min", "max"):
                if abs(f[key]) > _MAX_EXP:
                    self.err(f"{w}.{key}", f"{f[key]!r} is a natural-log bound and exp({f[key]!r}) "
                             f"overflows; did you mean {dist}_values?")
        if "q" in f and f["q"] <= 0:
            self.err(f"{w}.q", f"must be > 0, not {f['q']!r}")
        if "sigma" in f and f["sigma"] <= 0:
            self.err(f"{w}.sigma", f"must be > 0, not {f['sigma']!r}")
        for key in ("a", "b"):
            if key in f and f[key] <= 0:
                self.err(f"{w}.{key}", f"must be > 0, not {f[key]!r}")
        if len(self.problems) == n0:
            self.reach(w, dist, f)
        if "values" in f:
            if not isinstance(f["values"], list) or not f["values"]:
                self.err(f"{w}.values", f"must be a non-empty list, not {_show(f['values'])}")
        if "probabilities" in f:
            probs = f["probabilities"]
            if not isinstance(probs, list) or not all(
                    _is_number(x) and math.isfinite(x) and x >= 0 for x in probs):
                self.err(f"{w}.probabilities", f"must be a list of numbers >= 0, not {_show(probs)}")
            elif isinstance(f["values"], list) and len(probs) != len(f["values"]):
                self.err(f"{w}.probabilities", f"has {len(probs)} entries for {len(f['values'])} values")
            elif not math.isclose(math.fsum(probs), 1.0, rel_tol=0, abs_tol=1e-5):
                self.err(f"{w}.probabilities", f"sum to {math.fsum(probs)!r}, not 1")
        if len(self.problems) > n0:
            return None
        return Parameter(
            path=path, distribution=dist,
            value=copy.deepcopy(f.get("value")),
            values=tuple(copy.deepcopy(f["values"])) if "values" in f else None,
            probabilities=tuple(f["probabilities"]) if "probabilities" in f else None,
            **{k: f.get(k) for k in ("min", "max", "mu", "sigma", "a", "b", "q")},
        )

    def reach(self, w: str, dist: str, f: dict) -> None:
        """Refuse bounds whose values a float cannot hold: space.py would overflow drawing them."""
        if dist in ("uniform", "q_uniform") and not math.isfinite(f["max"] - f["min"]):
            self.err(w, f"max - min overflows a float ({f['min']!r}..{f['max']!r}); narrow the range")
            return
        ends = {"q_uniform": (f.get("min"), f.get("max")),
                "q_log_uniform_values": (f.get("min"), f.get("max")), "q_beta": (0.0, 1.0)}.get(dist)
        if dist in ("normal", "q_normal", "log_normal", "q_log_normal"):
            normal = statistics.NormalDist(f["mu"], f["sigma"])
            lo, hi = normal.inv_cdf(NORMAL_TAIL), normal.inv_cdf(1.0 - NORMAL_TAIL)
            if not (math.isfinite(lo) and math.isfinite(hi)):
                self.err(w, f"mu ± {_NORMAL_Z:.2f} sigma, the range values are drawn from, "
                         f"overflows a float (mu {f['mu']!r}, sigma {f['sigma']!r}); lower them")
                return
            if "log" in dist:
                try:
                    lo, hi = math.exp(lo), math.exp(hi)
                except OverflowError:
                    self.err(w, f"exp(mu + {_NORMAL_Z:.2f} sigma) = exp({hi:.6g}) overflows (mu "
                             f"{f['mu']!r}, sigma {f['sigma']!r}); a {dist} takes mu and sigma of "
                             "the natural log of the value")
                    return
            ends = (lo, hi)
        elif dist == "q_log_uniform":
            ends = (math.exp(f["min"]), math.exp(f["max"]))
        if "q" in f and ends is not None:
            top = max(abs(ends[0]), abs(ends[1]))
            if not math.isfinite(top / f["q"]):
                self.err(f"{w}.q", f"{f['q']!r} is too small for values up to {top:.6g}: "
                         "value / q overflows a float")
