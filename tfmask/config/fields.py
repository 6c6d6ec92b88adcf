"""The honoured-field ledger: reading a pipeline.config, writing the experiment.

The translator (:mod:`tfmask.config.translate`) reads every setting through
:class:`Fields`; a field counts as honoured when its value is read, so every
read value must reach the experiment (written with :meth:`Ledger.set`) or
decide something (an error, a note). Whatever the file sets that was never
read is, exactly, the list of fields tfmask does not honour (a warning, or an
error with --strict). :class:`Ledger` holds the views of the file's parts,
the Model Garden overrides the sections write, and the notes on approximated
fields.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from tfmask.errors import ConfigError, DataError
from tfmask.config.textproto import Message

PLACEHOLDER = "PATH_TO_BE_CONFIGURED"
_MISSING = object()


def _show(value: Any) -> str:
    return "a message { ... }" if isinstance(value, Message) else repr(value)


def to_int(value: Any, key: str, minimum: Optional[int] = None,
           maximum: Optional[int] = None) -> int:
    """``value`` as an int (a whole float such as ``300.0`` counts), else ConfigError."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{key} must be an integer, got {_show(value)}")
    _check_range(value, key, minimum, maximum)
    return value


def to_float(value: Any, key: str, minimum: Optional[float] = None,
             maximum: Optional[float] = None) -> float:
    """``value`` as a finite float, else ConfigError."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) \
            or not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, got {_show(value)}")
    _check_range(value, key, minimum, maximum)
    return float(value)


def _check_range(value, key, minimum, maximum) -> None:
    if minimum is not None and value < minimum or maximum is not None and value > maximum:
        bounds = (f"between {minimum} and {maximum}" if minimum is not None and
                  maximum is not None else f">= {minimum}" if minimum is not None
                  else f"<= {maximum}")
        raise ConfigError(f"{key} must be {bounds}, got {_show(value)}")


class Fields:
    """A view of one message that records which fields the translator read."""

    def __init__(self, msg: Optional[Message], path: str, used: set):
        self.msg = msg or Message()
        self.path = path
        self._used = used

    def _key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return self.msg.has(name)

    def get(self, name: str, default: Any = None) -> Any:
        if self.msg.has(name):
            self._used.add(self._key(name))
        return self.msg.get(name, default)

    def get_int(self, name: str, default: Any = None, minimum: Optional[int] = None,
                maximum: Optional[int] = None) -> int:
        """An integer field (``default`` when absent); other values raise ConfigError."""
        return to_int(self.get(name, default), self._key(name), minimum, maximum)

    def get_float(self, name: str, default: Any = None, minimum: Optional[float] = None,
                  maximum: Optional[float] = None) -> float:
        """A finite number field (``default`` when absent); else ConfigError."""
        return to_float(self.get(name, default), self._key(name), minimum, maximum)

    def get_floats(self, name: str) -> List[float]:
        """Every value of a repeated number field."""
        return [to_float(v, self._key(name)) for v in self.get_all(name)]

    def get_bool(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self._key(name)} must be true or false, got {_show(value)}")
        return value

    def get_name(self, name: str, default: Any = None) -> Any:
        """A string or enum-name field (``default`` when absent); else ConfigError."""
        value = self.get(name, default)
        if value is not default and not isinstance(value, str):
            raise ConfigError(f"{self._key(name)} must be a name or quoted string, "
                              f"got {_show(value)}")
        return value

    def get_all(self, name: str) -> List[Any]:
        if self.msg.has(name):
            self._used.add(self._key(name))
        return self.msg.get_all(name)

    def sub(self, name: str) -> "Fields":
        value = self.msg.get(name)
        if value is not None and not isinstance(value, Message):
            raise ConfigError(f"{self._key(name)} must be a message {{ ... }}, "
                              f"got {_show(value)}")
        if isinstance(value, Message) and not value.fields:
            self._used.add(self._key(name))  # an empty message is a leaf
        return Fields(value, self._key(name), self._used)

    def subs(self, name: str) -> List["Fields"]:
        out = []
        for value in self.msg.get_all(name):
            if isinstance(value, Message) and not value.fields:
                self._used.add(self._key(name))
            out.append(Fields(value if isinstance(value, Message) else None, self._key(name),
                              self._used))
        return out

    def oneof(self) -> Tuple[Optional[str], "Fields"]:
        name, _ = self.msg.oneof()
        return name, self.sub(name) if name else Fields(None, self.path, self._used)

    def expect(self, name: str, value: Any) -> None:
        """Marks a field honoured when it holds the value Model Garden behaves as."""
        if self.msg.has(name) and self.msg.get(name) == value:
            self._used.add(self._key(name))


def leaf_paths(msg: Message, prefix: str = "") -> List[str]:
    out: List[str] = []
    for name, value in msg.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, Message) and value.fields:
            out.extend(leaf_paths(value, key))
        elif key not in out:
            out.append(key)
    return out


def is_used(path: str, used: set) -> bool:
    parts = path.split(".")
    return any(".".join(parts[:i]) in used for i in range(1, len(parts) + 1))




class Ledger:
    """One translation: the file's parts, the experiment written so far, the notes.

    Attributes:
      msg: the parsed pipeline.config.
      config_path: the file (named in errors).
      base: the folder relative paths resolve against.
      used: dotted paths of the fields read (honoured).
      overrides: the nested dict ``ExperimentConfig.override`` receives.
      notes: how approximated fields were mapped (for the user's log).
      root, frcnn, train, train_in, eval_cfg, eval_in: :class:`Fields` views of
        the file, ``model.faster_rcnn``, ``train_config``, ``train_input_reader``,
        ``eval_config`` and the first ``eval_input_reader``.
      extras: what a section decided that later sections read but Model Garden
        has no key for (the feature extractor entry, the label map).
    """

    def __init__(self, msg: Message, config_path: Path):
        self.msg = msg
        self.config_path = Path(config_path)
        self.base = self.config_path.resolve().parent
        self.used: set = set()
        self.overrides: Dict[str, Any] = {}
        self.notes: List[str] = []
        self.extras: Dict[str, Any] = {}
        self.root = Fields(msg, "", self.used)
        self.frcnn = self.root.sub("model").sub("faster_rcnn")
        self.train = self.root.sub("train_config")
        self.train_in = self.root.sub("train_input_reader")
        self.eval_cfg = self.root.sub("eval_config")
        eval_ins = self.root.subs("eval_input_reader")
        self.eval_in = eval_ins[0] if eval_ins else Fields(None, "eval_input_reader", self.used)

    def set(self, key: str, value: Any) -> None:
        """Writes ``value`` at the dotted experiment key (``task.model.min_level``)."""
        node = self.overrides
        *parents, leaf = key.split(".")
        for name in parents:
            node = node.setdefault(name, {})
        node[leaf] = value

    def update(self, key: str, values: Dict[str, Any]) -> None:
        """Writes each ``name: value`` under the dotted key."""
        for name, value in values.items():
            self.set(f"{key}.{name}", value)

    def get(self, key: str, default: Any = _MISSING) -> Any:
        """What an earlier section wrote at the dotted key (``default`` if nothing)."""
        node: Any = self.overrides
        for name in key.split("."):
            if not isinstance(node, dict) or name not in node:
                if default is _MISSING:
                    raise KeyError(f"no section wrote {key}")
                return default
            node = node[name]
        return node

    def note(self, text: str) -> None:
        self.notes.append(text)

    def resolve(self, value: Any, field_name: str) -> str:
        """A path field's value made absolute against the config's folder."""
        if not isinstance(value, str) or not value:
            raise DataError(self.config_path, f"{field_name} must be a non-empty quoted path",
                            kind="config")
        if PLACEHOLDER in value:
            raise DataError(self.config_path, f"{field_name} still holds '{value}'; replace "
                            f"{PLACEHOLDER} with a real path", kind="config")
        p = Path(os.path.expanduser(value))
        return os.path.normpath(p if p.is_absolute() else (self.base / p))

    def honoured(self) -> List[str]:
        """Leaf paths the file sets that were honoured, in file order."""
        return [p for p in leaf_paths(self.msg) if is_used(p, self.used)]

    def ignored(self) -> List[str]:
        """Leaf paths the file sets that were not honoured, in file order."""
        return [p for p in leaf_paths(self.msg) if not is_used(p, self.used)]
