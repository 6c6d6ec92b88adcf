"""Reading a parsed pipeline.config while recording which fields were honoured.

The translator (:mod:`tfmask.pipeline_config`) reads every setting through
:class:`Fields`; whatever the file sets that was never read is, exactly, the
list of fields tfmask does not honour (a warning, or an error with --strict).
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

from tfmask.errors import ConfigError
from tfmask.textproto import Message


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

    def get_all(self, name: str) -> List[Any]:
        if self.msg.has(name):
            self._used.add(self._key(name))
        return self.msg.get_all(name)

    def sub(self, name: str) -> "Fields":
        value = self.msg.get(name)
        if value is not None and not isinstance(value, Message):
            raise ConfigError(f"{self._key(name)} must be a message {{ ... }}, got {value!r}")
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


