"""Schema-free reader for protobuf text format (label maps, pipeline.config).

The OD API's ``.proto`` schemas are not installable on current TensorFlow, so
tfmask reads text-format files into a small tree of :class:`Message` nodes
using protobuf's own :class:`google.protobuf.text_format.Tokenizer`. That gives
the real text-format lexical rules: ``#`` comments, single and double quotes,
adjacent-string concatenation, ``field: value`` and ``field { ... }`` /
``field < ... >`` / ``field: { ... }``, repeated fields, list syntax
``field: [1, 2]``, and errors that carry line and column.

Usage::

    msg = parse_text(open("label.pbtxt").read(), path="label.pbtxt")
    for item in msg.get_all("item"):
        print(item.get("id"), item.get("name"))

Scalars come back as ``str`` (quoted strings), ``int``, ``float``, ``bool``
(``true``/``false``) or :class:`Identifier` (unquoted enum names such as
``SMOOTH_L1``).

Configs are edited as data and written back, never patched as text::

    msg = read_text_file("configs/mask_rcnn_tiny_cpu.config")
    msg.set("model.faster_rcnn.num_classes", 5)
    msg.set("train_input_reader.tf_record_input_reader.input_path", ["a-*", "b-*"])
    write_text_file("pipeline.config", msg)  # comments are not kept
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Tuple

from google.protobuf import text_encoding, text_format

from tfmask.errors import DataError, PathLike


class Identifier(str):
    """An unquoted identifier value (an enum name), distinct from a string."""


@dataclass
class Message:
    """One text-format message: field name -> list of values, in file order.

    Attributes:
      fields: ordered mapping from field name to every value it was given.
      lines: field name -> 1-based line numbers where each value started.
      line: 1-based line where the message started (0 for the top level).
    """

    fields: Dict[str, List[Any]] = field(default_factory=dict)
    lines: Dict[str, List[int]] = field(default_factory=dict)
    line: int = 0

    def add(self, name: str, value: Any, line: int) -> None:
        self.fields.setdefault(name, []).append(value)
        self.lines.setdefault(name, []).append(line)

    def get_all(self, name: str) -> List[Any]:
        """Every value of a (repeated) field, in file order; [] if absent."""
        return list(self.fields.get(name, []))

    def get(self, name: str, default: Any = None) -> Any:
        """The last value of a field (text format: last one wins), or default."""
        values = self.fields.get(name)
        return values[-1] if values else default

    def has(self, name: str) -> bool:
        return name in self.fields

    def line_of(self, name: str) -> int:
        lines = self.lines.get(name)
        return lines[-1] if lines else self.line

    def items(self) -> Iterator[Tuple[str, Any]]:
        for name, values in self.fields.items():
            for value in values:
                yield name, value

    def oneof(self) -> Tuple[Optional[str], Optional["Message"]]:
        """(name, message) of the single sub-message, for oneof wrappers.

        ``image_resizer { fixed_shape_resizer { ... } }`` -> ("fixed_shape_resizer", msg).
        """
        for name, value in self.items():
            if isinstance(value, Message):
                return name, value
        return None, None

    def _parent(self, path: str, create: bool) -> Tuple[Optional["Message"], str]:
        """(message holding the last name of dotted ``path``, that name)."""
        *parents, leaf = path.split(".")
        node = self
        for name in parents:
            child = node.get(name)
            if child is None and create:
                child = Message()
                node.add(name, child, 0)
            if child is None:
                return None, leaf
            if not isinstance(child, Message):
                raise ValueError(f"{path}: {name} holds {child!r}, not a message")
            node = child
        return node, leaf

    def set(self, path: str, value: Any) -> None:
        """Sets the field at dotted ``path`` (``train_config.num_steps``).

        A list sets a repeated field to its values; anything else replaces
        every value of the field with this one. Each name on the way steps
        into that field's last message (the one :meth:`get` reads), which is
        created when absent. The field keeps its place in the file order.
        """
        node, leaf = self._parent(path, create=True)
        values = list(value) if isinstance(value, (list, tuple)) else [value]
        node.fields[leaf] = values
        node.lines[leaf] = [0] * len(values)

    def remove(self, path: str) -> None:
        """Removes the field at dotted ``path`` (nothing if it is absent)."""
        node, leaf = self._parent(path, create=False)
        if node is not None:
            node.fields.pop(leaf, None)
            node.lines.pop(leaf, None)

    def get_path(self, path: str, default: Any = None) -> Any:
        """The value at dotted ``path`` (last values on the way), or ``default``."""
        node, leaf = self._parent(path, create=False)
        return default if node is None else node.get(leaf, default)


def _parse_scalar(tok: text_format.Tokenizer) -> Any:
    if tok.token[:1] in ("'", '"'):
        # ConsumeString joins adjacent quoted strings, as protobuf does.
        return tok.ConsumeString()
    if tok.token in ("true", "True", "t"):
        tok.NextToken()
        return True
    if tok.token in ("false", "False", "f"):
        tok.NextToken()
        return False
    text = tok.token
    if text[:1].isdigit() or text[:1] in "-+.":
        try:
            return tok.ConsumeInteger()
        except text_format.ParseError:
            pass
        return tok.ConsumeFloat()
    return Identifier(tok.ConsumeIdentifier())


# Deeper nesting than any real config; without a limit a hostile file would end
# in RecursionError instead of a syntax error naming the line.
MAX_DEPTH = 100


def _parse_message(tok: text_format.Tokenizer, end: Optional[str], line: int,
                   depth: int = 0) -> Message:
    if depth > MAX_DEPTH:
        raise tok.ParseError(f"messages nested more than {MAX_DEPTH} levels deep")
    msg = Message(line=line)
    while True:
        if end is None and tok.AtEnd():
            return msg
        if end is not None and tok.TryConsume(end):
            return msg
        if tok.AtEnd():
            raise tok.ParseError(f"expected '{end}' before the end of the file")
        field_line = tok._line + 1  # the tokenizer keeps 0-based lines
        name = tok.ConsumeIdentifier()
        has_colon = tok.TryConsume(":")
        if tok.LookingAt("{") or tok.LookingAt("<"):
            close = "}" if tok.token == "{" else ">"
            tok.NextToken()
            msg.add(name, _parse_message(tok, close, field_line, depth + 1), field_line)
        elif not has_colon:
            raise tok.ParseError(f"expected ':' or '{{' after field '{name}'")
        elif tok.TryConsume("["):
            if not tok.TryConsume("]"):
                while True:
                    if tok.LookingAt("{") or tok.LookingAt("<"):
                        close = "}" if tok.token == "{" else ">"
                        tok.NextToken()
                        msg.add(name, _parse_message(tok, close, field_line, depth + 1),
                                field_line)
                    else:
                        msg.add(name, _parse_scalar(tok), field_line)
                    if tok.TryConsume("]"):
                        break
                    tok.Consume(",")
        else:
            msg.add(name, _parse_scalar(tok), field_line)
        # Separators between fields are optional in text format.
        if not tok.TryConsume(","):
            tok.TryConsume(";")


def parse_text(text: str, path: Optional[PathLike] = None) -> Message:
    """Parses protobuf text format into a :class:`Message` tree.

    Args:
      text: the file contents.
      path: the file name, used in error messages.

    Raises:
      DataError: (kind ``syntax``) naming the file, line and column.
    """
    # Lines split on "\n" only, as protobuf's text_format.Parse does: splitlines()
    # would also split inside strings at \x0b, \x1c, \x85, \u2028, ... and shift
    # the line numbers of errors away from what editors show.
    tok = text_format.Tokenizer(text.split("\n"))
    try:
        return _parse_message(tok, None, 0)
    except text_format.ParseError as exc:
        # protobuf formats its messages as "LINE:COL : 'context': reason".
        reason = str(exc).rsplit(": ", 1)[-1]
        raise DataError(path, f"syntax error at line {exc.GetLine()}, column "
                        f"{exc.GetColumn()}: {reason}", kind="syntax") from None


def read_text(path: PathLike) -> str:
    """Reads a UTF-8 text file; missing or unreadable files raise DataError."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise DataError(path, "file not found", kind="missing_file") from None
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                        kind="syntax") from None
    except OSError as exc:
        raise DataError(path, f"cannot read: {exc.strerror}", kind="unreadable") from None
    except ValueError as exc:  # e.g. a NUL character in a path taken from a config
        raise DataError(path, f"cannot read: {exc}", kind="unreadable") from None


def read_text_file(path: PathLike) -> Message:
    """Reads and parses a text-format file; errors name the file."""
    return parse_text(read_text(path), path)


def _format_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Identifier):
        return str(value)
    if isinstance(value, str):
        return '"' + text_encoding.CEscape(value, as_utf8=True) + '"'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # Written so that parse_text reads a float back ('inf' alone is an identifier).
        if value != value:
            return "-nan"
        return repr(value) if abs(value) != float("inf") else ("-inf" if value < 0 else "+inf")
    raise ValueError(f"cannot write {value!r} in protobuf text format")


def format_text(msg: Message, indent: int = 0) -> str:
    """``msg`` in protobuf text format (two-space indents, one field a line).

    :func:`parse_text` reads it back to the same fields and values.
    """
    pad = "  " * indent
    lines = []
    for name, values in msg.fields.items():
        if len(values) > 1 and not any(isinstance(v, Message) for v in values):
            lines.append(f"{pad}{name}: [{', '.join(_format_scalar(v) for v in values)}]")
            continue
        for value in values:
            if not isinstance(value, Message):
                lines.append(f"{pad}{name}: {_format_scalar(value)}")
            elif value.fields:
                lines += [f"{pad}{name} {{", format_text(value, indent + 1), f"{pad}}}"]
            else:
                lines.append(f"{pad}{name} {{ }}")
    return "\n".join(lines) + ("\n" if indent == 0 and lines else "")


def write_text_file(path: PathLike, msg: Message, header: str = "") -> None:
    """Writes ``msg`` as a text-format file, atomically; ``header`` becomes ``#`` lines."""
    from tfmask.atomic import atomic_write

    comment = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    atomic_write(path, comment + format_text(msg))
