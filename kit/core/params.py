"""Typed notebook parameters: one dataclass per notebook, checked before any engine starts.

Papermill never checks types and only logs unknown names, and YAML
turns ``1e-5`` into a string and ``3.10`` into 3.1. Every notebook therefore passes its
namespace through :func:`collect`, which rejects unknown names with the closest valid
ones and coerces or rejects each value with a message naming the parameter and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from typing import Any, Union

NONE_WORDS = {"none", "null", "~", ""}

TRUE_WORDS = {"true", "yes", "on", "1"}

FALSE_WORDS = {"false", "no", "off", "0"}


class ParameterError(ValueError):
    """A bad notebook parameter: the message names the parameter and how to fix it."""


def parameter_names(schema: type) -> list[str]:
    return [f.name for f in dataclasses.fields(schema)]


def defaults(schema: type) -> dict[str, Any]:
    return dataclasses.asdict(schema())


def collect(schema: type, namespace: dict[str, Any]) -> Any:
    """Build ``schema`` from a notebook's globals after papermill injected its values.

    Names the schema does not declare but that hold plain values (what papermill injects)
    are reported as unknown parameters.
    """
    names = set(parameter_names(schema))
    hidden = _ipython_hidden_names()
    unknown = sorted(
        key
        for key, value in namespace.items()
        if key not in names
        and not key.startswith(("_", "PAPERMILL_"))
        and key not in hidden
        and isinstance(value, str | int | float | bool | list | dict | tuple | type(None))
    )
    if unknown:
        raise unknown_parameter_error(unknown, sorted(names))
    return build(schema, {k: namespace[k] for k in names if k in namespace})


def build(schema: type, values: dict[str, Any]) -> Any:
    """Coerce ``values`` to the schema's declared types; unknown keys are errors."""
    names = parameter_names(schema)
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise unknown_parameter_error(unknown, names)
    hints = typing.get_type_hints(schema)
    coerced = {name: coerce(name, value, hints[name]) for name, value in values.items()}
    unbounded = getattr(schema, "UNBOUNDED", ())  # parameters where inf means "no limit"
    for name, value in coerced.items():
        refuse_non_finite(name, value, allow_inf=name in unbounded)
    params = schema(**coerced)
    check = getattr(params, "check", None)
    if check is not None:
        check()
    return params


def check_generation(
    max_output_len: int,
    temperature: float,
    output_note: str = "",
    temperature_note: str = "0 = greedy",
) -> None:
    """The checks every notebook that generates shares (notes say what the vendor used)."""
    if max_output_len < 1:
        note = f" ({output_note})" if output_note else ""
        raise ParameterError(f"Parameter 'max_output_len' must be at least 1{note}.")
    if temperature < 0:
        raise ParameterError(f"Parameter 'temperature' must be >= 0 ({temperature_note}).")


def refuse_non_finite(name: str, value: Any, allow_inf: bool = False) -> None:
    """NaN or infinity anywhere in a value (YAML's .nan inside engine_args too) is refused:
    it passes most checks, fails much later, and cannot be written to strict JSON."""
    if isinstance(value, float) and math.isinf(value) and value > 0 and allow_inf:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise _type_error(name, value, "a finite number", "-p {name} 0.5")
    if isinstance(value, dict):
        for key, item in value.items():
            refuse_non_finite(f"{name}.{key}", item)
    elif isinstance(value, list | tuple):
        for item in value:
            refuse_non_finite(name, item)


def unknown_parameter_error(unknown: list[str], valid: list[str]) -> ParameterError:
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, valid, n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        parts.append(f"{name!r}{hint}")
    return ParameterError(
        f"Unknown parameter {', '.join(parts)}. This notebook accepts: {', '.join(valid)}. "
        "Fix the name in your -p option or parameter file; nothing was run."
    )


def coerce(name: str, value: Any, annotation: Any) -> Any:
    """Return ``value`` as ``annotation`` or raise a ParameterError that says how to fix it."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        options = typing.get_args(annotation)
        if type(None) in options and (
            value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS)
        ):
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return coerce(name, value, option)
            except ParameterError as exc:
                errors.append(exc)
        raise errors[0]
    if annotation is Any:
        return value
    if annotation is bool:
        return _to_bool(name, value)
    if annotation is int:
        return _to_int(name, value)
    if annotation is float:
        return _to_float(name, value)
    if annotation is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _type_error(name, value, "a string", '-p {name} "text"')
    if origin is list or annotation is list:
        (item_type,) = typing.get_args(annotation) or (Any,)
        if isinstance(value, str):
            items = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            items = [value]
        return [coerce(name, item, item_type) for item in items]
    if origin is dict or annotation is dict:
        if isinstance(value, dict):
            return dict(value)
        raise _type_error(name, value, "a mapping", "-y '{name}: {{key: value}}'")
    raise TypeError(f"unsupported parameter annotation {annotation!r} for {name}")


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise _type_error(name, value, "true or false", "-p {name} true")


def _to_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise _type_error(name, value, "an integer", "-p {name} 256")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip().replace("_", ""))
        except ValueError:
            pass
    raise _type_error(name, value, "an integer", "-p {name} 256")


def _to_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise _type_error(name, value, "a number", "-p {name} 0.5")
    number = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):  # YAML reads 1e-5 as a string
        try:
            number = float(value.strip())
        except ValueError:
            pass
    if number is None:
        raise _type_error(name, value, "a number", "-p {name} 0.5")
    if math.isnan(number):  # float("nan") parses, but means nothing here
        raise _type_error(name, value, "a finite number", "-p {name} 0.5")
    return number  # inf is refused by refuse_non_finite unless the schema allows it


def _type_error(name: str, value: Any, expected: str, example: str) -> ParameterError:
    return ParameterError(
        f"Parameter {name!r} must be {expected}, got {value!r} ({type(value).__name__}). "
        f"Fix: pass it as e.g. {example.format(name=name)}, or correct it in the parameter file."
    )


def _ipython_hidden_names() -> set[str]:
    try:
        from IPython import get_ipython
    except ImportError:
        return set()
    shell = get_ipython()
    return set(getattr(shell, "user_ns_hidden", {}) or {}) if shell else set()
