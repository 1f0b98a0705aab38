"""Settings layers, like git's: each layer is a nested table with one origin, merged key by key.

A layer is a settings file, one `PULSECHECK_*` environment variable, or a command-line flag. Tables merge key
by key; any other value (a list included) is replaced whole by the higher layer. The merge remembers where
each key came from, so that errors and `config show` can name the file or variable.
"""

from __future__ import annotations

import functools
import re
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Union

from pulsecheck.config.defaults import PLAIN_TEXT, TOP_LEVEL
from pulsecheck.errors import InputError, ValidationFailed

if TYPE_CHECKING:
    from pydantic import BaseModel

# The typed models (`sections.py`, pydantic) are imported where a layer sets a section or a key needs checking:
# a command whose only setting is text for a text key (the database URL) never imports them (issue 17).

ENV_PREFIX = "PULSECHECK_"
NESTING = "__"  # PULSECHECK_NOTIFICATIONS__CHANNEL is [notifications] channel
# PULSECHECK_* variables that are not settings: which file, who, when, and where the system file is.
NOT_SETTINGS = frozenset({"CONFIG", "USER", "NOW", "SYSTEM_CONFIG"})

Path_ = tuple[str | int, ...]


class Layer(NamedTuple):  # not a dataclass, whose making costs every command's start-up more (issue 17)
    """One source of settings: `values` (nested tables) from `origin` (a file path, a variable, a flag)."""

    origin: str
    values: dict[str, Any]


MAX_SETTINGS_BYTES = 1_000_000  # a settings file is a page of keys; anything near this is not one


def read_file(path: Path) -> Layer:
    """A settings file as a layer; InputError naming the file when it cannot be read or is not TOML."""
    import tomllib  # only when a file is read: a command with no settings file does without it

    from pulsecheck.textfile import read_text

    text = read_text(path, MAX_SETTINGS_BYTES)  # a regular UTF-8 file of bounded size, or one error naming it
    try:
        return Layer(str(path), tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: invalid TOML: {exc}") from None


def environment_layers(env: Mapping[str, str]) -> list[Layer]:
    """One layer per `PULSECHECK_<KEY>` (top-level keys) or `PULSECHECK_<SECTION>__<KEY>` variable, by name.

    Other `PULSECHECK_*` variables (secrets named by `password_env`, the clock, the user) are not settings.
    """
    layers = []
    for var in sorted(env):
        if not var.startswith(ENV_PREFIX) or var.removeprefix(ENV_PREFIX) in NOT_SETTINGS:
            continue
        path = tuple(part.lower() for part in var.removeprefix(ENV_PREFIX).split(NESTING))
        if len(path) == 1 and path[0] not in TOP_LEVEL:
            continue
        if len(path) > 1:
            from pulsecheck.config.sections import SettingsFile

            if path[0] not in SettingsFile.model_fields:
                from pulsecheck.yamlfile import suggest

                hint = suggest(path[0], [name for name in SettingsFile.model_fields if name not in TOP_LEVEL])
                raise InputError(f"{var}: unknown section {path[0]!r}{hint}")
        value: Any = env[var] if len(path) == 1 else _env_value(path, env[var])  # every top-level key is text
        for part in reversed(path):
            value = {part: value}
        layers.append(Layer(var, value))
    return layers


def _env_value(path: tuple[str, ...], text: str) -> Any:
    """The text of a variable read as a TOML value (`3`, `true`, `["a", "b"]`) unless the key holds text."""
    if _annotation_at(path) is str:
        return text
    import tomllib

    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text  # a duration (2d), a time (09:00), a name: the model checks it


def _annotation_at(path: Path_) -> Any:
    """The type the settings model expects at `path` (None for a key it does not know)."""
    from pydantic import BaseModel

    from pulsecheck.config.sections import SettingsFile

    annotation: Any = SettingsFile
    for part in path:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {field.alias or name: field for name, field in annotation.model_fields.items()}
            if part not in fields:
                return None
            annotation = fields[str(part)].annotation
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]  # dict[str, X] and list[X]: X
        else:
            return None
    return _unwrap(annotation)


def _unwrap(annotation: Any) -> Any:
    """`X | None` and `Annotated[X, ...]` as X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            options = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(options) != 1:
                return annotation
            annotation = options[0]
        else:
            return annotation


def _is_table(annotation: Any) -> bool:
    from pydantic import BaseModel

    inner = _unwrap(annotation)
    return typing.get_origin(inner) is dict or (isinstance(inner, type) and issubclass(inner, BaseModel))


class Merged:
    """The layers merged: `values` for validation, the `origins` of every value a layer set, and of every table
    the first layer that made it (errors about a table, or a key missing from it, name that layer)."""

    def __init__(self, layers: list[Layer]) -> None:
        self.values: dict[str, Any] = {}
        self.origins: dict[Path_, str] = {}
        self.tables: dict[Path_, str] = {}
        for layer in layers:
            self._merge(self.values, layer.values, layer.origin, ())

    def _merge(self, target: dict[str, Any], values: Mapping[str, Any], origin: str, prefix: Path_) -> None:
        for key, value in values.items():
            path = (*prefix, key)
            if isinstance(value, Mapping):
                if not isinstance(target.get(key), dict):
                    self._forget(path)
                    target[key] = {}
                self.tables.setdefault(path, origin)
                self._merge(target[key], value, origin, path)
            else:
                self._forget(path)
                target[key] = value
                self.origins[path] = origin

    def _forget(self, path: Path_) -> None:
        for known in (self.origins, self.tables):
            for below in [p for p in known if p[: len(path)] == path]:
                del known[below]

    def origin(self, path: Path_) -> str | None:
        """The layer that set `path` (or the value holding it), else the one that made its table; None for a
        built-in default."""
        for known in (self.origins, self.tables):
            for end in range(len(path), 0, -1):
                if path[:end] in known:
                    return known[path[:end]]
        return None

    def validate(self, keys: frozenset[str] | None = None) -> dict[str, Any]:
        """The top-level keys some layer set (those of them in `keys`, if given), typed (a section as its model);
        InputError naming the origin and key of each problem.

        Only the keys some layer set are validated (a section nobody set keeps its defaults, which need no
        check), so a command builds the validators of those sections only; text for a text key (the database URL
        from `--db` or PULSECHECK_DATABASE_URL, the usual case of a read command) needs no validator at all, nor
        pydantic."""
        values = self.values if keys is None else {name: self.values[name] for name in keys}
        if _all_plain_text(values):
            return dict(values)
        from pydantic import ValidationError

        try:
            checked = _checker(frozenset(values)).model_validate(values)
        except ValidationError as exc:
            errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")  # a typo explains the rest
            problems = [self.problem(tuple(e["loc"]), _message(e), _names_table(e)) for e in errors]
            raise ValidationFailed(problems) from None
        return {name: getattr(checked, name) for name in type(checked).model_fields}

    def plain_text(self) -> bool:
        """Whether every value is text for a plain text key (the database URL): nothing to validate."""
        return _all_plain_text(self.values)

    def problem(self, loc: Path_, message: str, table: bool = False) -> str:
        """`origin: [table] key: message` for the key at `loc` (`origin: [table]: message` for a table)."""
        return f"{self.origin(loc) or 'default'}: {describe(loc, table)}: {message}"


def _all_plain_text(values: Mapping[str, Any]) -> bool:
    """Whether each value is text for a top-level key typed plain `str` (no constraint, no validator): what strict
    validation would return unchanged."""
    return all(name in PLAIN_TEXT and type(value) is str for name, value in values.items())


@functools.cache
def _checker(keys: frozenset[str]) -> type[BaseModel]:
    """A model of the settings fields `keys` names, strict and closed like `SettingsFile` (an unknown key is still
    an error with the same location); validating with it builds only those fields' validators."""
    from pydantic import create_model

    from pulsecheck.config.sections import Section, SettingsFile

    fields: dict[str, Any] = {
        name: (field.annotation, field) for name, field in SettingsFile.model_fields.items() if name in keys
    }
    return create_model("SettingsFile", __base__=Section, **fields)


def _names_table(error: Any) -> bool:
    """Whether a validation error is about a whole table (an unknown section, a rule across keys)."""
    loc = tuple(error["loc"])
    if error["type"] == "extra_forbidden":
        return len(loc) == 1 and isinstance(error.get("input"), Mapping)
    return all(isinstance(p, str) for p in loc) and _is_table(_annotation_at(loc))


def describe(loc: Path_, table: bool = False) -> str:
    """A key as a user reads it in the file: `timezone`, `[review] due_in`, `[escalation] ladder[1].role`; a
    table as `[notifications.email]`."""
    parts = [p for p in loc if p != "[key]"]
    if table:
        return f"[{'.'.join(str(p) for p in parts)}]"
    first_index = next((i for i, p in enumerate(parts) if isinstance(p, int)), None)
    if first_index is None:
        tables, key = parts[:-1], str(parts[-1])
    else:
        tables = parts[: first_index - 1]
        key = str(parts[first_index - 1]) + "".join(
            f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts[first_index:]
        )
    return f"[{'.'.join(str(p) for p in tables)}] {key}" if tables else key


_TYPES = {
    "list_type": "expected a list of names",
    "string_type": "expected text",
    "int_type": "expected a whole number",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "time_type": "expected a time of day like 09:00",
}


_BOUNDS = {
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
}


def _message(error: Any) -> str:
    """The problem in words; the loader puts the origin and key before it."""
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        return _unknown(error["loc"], value)
    if kind == "missing":
        return "required"
    if kind in _TYPES:
        return f"{_TYPES[kind]}, got {value!r}"
    if kind in _BOUNDS:
        word, bound = _BOUNDS[kind]
        return f"must be {word} {error['ctx'][bound]}, got {value!r}"
    if kind == "too_short":
        return "must not be empty"
    if kind == "literal_error":
        from pulsecheck.yamlfile import suggest

        choices = re.findall(r"'([^']*)'", error["ctx"]["expected"])
        return f"expected {error['ctx']['expected']}, got {value!r}{suggest(str(value), choices)}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return message[:1].lower() + message[1:]


def _unknown(loc: Path_, value: Any) -> str:
    """`unknown section (did you mean [notifications]?)` or `unknown key (did you mean 'channel'?)`."""
    from pydantic import BaseModel

    from pulsecheck.config.sections import SettingsFile
    from pulsecheck.yamlfile import suggest

    model = _annotation_at(loc[:-1])
    is_model = isinstance(model, type) and issubclass(model, BaseModel)
    known = [f.alias or n for n, f in model.model_fields.items()] if is_model else []
    name = str(loc[-1])
    if len(loc) == 1 and isinstance(value, Mapping):
        tables = [n for n in known if _is_table(SettingsFile.model_fields[n].annotation)]
        hint = suggest(name, tables).replace(" (did you mean '", " (did you mean [").replace("'?)", "]?)")
        return f"unknown section{hint}"
    return f"unknown key{suggest(name, known)}"


def flatten(value: Any, path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    """Every leaf of the settings with its path, tables walked in the order of the model, lists kept whole."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        for name, field in type(value).model_fields.items():
            yield from flatten(getattr(value, name), (*path, field.alias or name))
    elif isinstance(value, dict) and value:
        for key, item in value.items():
            yield from flatten(item, (*path, key))
    else:
        yield path, value
