"""YAML presets -> frozen dataclasses, with dotted overrides and strict key/type checks."""

from __future__ import annotations

import dataclasses
import enum
import pathlib
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import yaml

__all__ = ["ConfigError", "apply_overrides", "config_from_dict", "config_to_dict", "load_config"]

T = TypeVar("T")


class ConfigError(ValueError):
    """A config that does not fit its dataclass; the message names the dotted key."""


def load_config(
    cls: type[T],
    source: str | pathlib.Path | Mapping[str, Any] | None,
    overrides: Sequence[str] = (),
) -> T:
    """Build ``cls`` from a YAML file (or a mapping) plus ``key.sub=value`` overrides.

    Override values are read as YAML (``0.28`` -> float, ``[1, 2]`` -> list, ``null`` -> None).

    Raises:
        ConfigError: unknown keys, missing required keys and wrong types, naming the key.
    """
    if source is None:
        data: dict[str, Any] = {}
    elif isinstance(source, Mapping):
        data = _deep_copy(source)
    else:
        loaded = _read_yaml(pathlib.Path(source))
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            raise ConfigError(
                f"{source}: the top level must be a mapping, got {type(loaded).__name__}"
            )
        data = _deep_copy(loaded)
    return config_from_dict(cls, apply_overrides(data, overrides))


def _read_yaml(path: pathlib.Path) -> Any:
    """The YAML document in ``path``; a file that cannot be read or parsed raises one
    :class:`ConfigError` line naming the file (and the line and column of a syntax error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        cause = " ".join(str(x) for x in (e.context, e.problem) if x) or type(e).__name__
        cause = " ".join(cause.split())  # one line, whatever the parser's wording
        raise ConfigError(f"{where}: invalid YAML: {cause}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None


def _deep_copy(m: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in m.items()}


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` strings to a nested dict in place and return it."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like 'key.sub=value'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(f"override {key}: cannot read value {raw!r}: {e}") from None
        node = data
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {key}: {'.'.join(parts[: i + 1])} is a value, not a section"
                )
            node = child
        node[parts[-1]] = value
    return data


def config_from_dict(cls: type[T], data: Mapping[str, Any], *, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a nested mapping, checking every key and type.

    A dataclass may declare ``RENAMED_KEYS: ClassVar[Mapping[str, str]]`` (old key -> new
    key): an old key then fails with an error that names the new one.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or '<root>'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    renamed: Mapping[str, str] = getattr(cls, "RENAMED_KEYS", {})
    for key in data:
        if key not in fields:
            if key in renamed:
                raise ConfigError(
                    f"'{prefix}{key}' was renamed to '{prefix}{renamed[key]}' "
                    f"({cls.__name__}); use the new key"
                )
            valid = ", ".join(sorted(fields))
            raise ConfigError(f"unknown key '{prefix}{key}' in {cls.__name__}; valid keys: {valid}")
    kwargs = {}
    for name, f in fields.items():
        dotted = f"{prefix}{name}"
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], dotted)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required key {dotted!r} ({cls.__name__})")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {e}") from e


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(tp: Any, value: Any, key: str) -> Any:
    """Check (and, for containers, rebuild) ``value`` as type ``tp``."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return config_from_dict(tp, value, prefix=f"{key}.")
    if origin in (tuple, list, Sequence) or tp in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(args) != len(value):
                raise ConfigError(f"{key}: expected {len(args)} items, got {len(value)}")
            items = [
                _convert(a, v, f"{key}[{i}]")
                for i, (a, v) in enumerate(zip(args, value, strict=False))
            ]
        else:
            item_tp = args[0] if args else Any
            items = [_convert(item_tp, v, f"{key}[{i}]") for i, v in enumerate(value)]
        return list(items) if (origin is list or tp is list) else tuple(items)
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        ktp, vtp = args if args else (Any, Any)
        return {
            _convert(ktp, k, f"{key}.{k}"): _convert(vtp, v, f"{key}.{k}") for k, v in value.items()
        }
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            raise ConfigError(
                f"{key}: expected one of {[m.value for m in tp]}, got {value!r}"
            ) from None
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected float, got {type(value).__name__} {value!r}")
    if tp is int or tp is str or tp is bool:
        if isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{key}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    if tp is pathlib.Path:
        if isinstance(value, (str, pathlib.Path)):
            return pathlib.Path(value)
        raise ConfigError(f"{key}: expected a path, got {value!r}")
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ConfigError(f"{key}: expected {tp.__name__}, got {type(value).__name__} {value!r}")
    raise ConfigError(f"{key}: unsupported field type {tp!r}")


def config_to_dict(cfg: Any) -> Any:
    """Turn a config dataclass back into plain YAML-able data (enums to values, tuples to lists)."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: config_to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, Mapping):
        return {k: config_to_dict(v) for k, v in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [config_to_dict(v) for v in cfg]
    if isinstance(cfg, enum.Enum):
        return cfg.value
    if isinstance(cfg, pathlib.Path):
        return str(cfg)
    return cfg
