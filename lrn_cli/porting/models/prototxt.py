"""A small reader of the protocol-buffer text format (Caffe's ``.prototxt``).

Enough of the format for model definitions, written from the format's description, not
from any schema: ``#`` comments, ``key: value`` and ``key { ... }`` (also ``key: { ... }`` and
``key < ... >``), strings in single or double quotes with C escapes (adjacent strings join),
numbers (with ``inf``/``nan`` words), enum words, lists ``key: [a, b]``, optional ``,`` or
``;`` after a field, fields in any order, repeated fields repeated.  Malformed text is refused
with its line number.  Nothing is ever evaluated.

The result is a tree of :class:`Message` (ordered ``(name, value)`` fields; a value is a
:class:`Scalar` or a nested :class:`Message`), each with the line it starts on, so readers
can validate a schema of their own and point at the offending line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Nesting deeper than this is refused (a real net is 3-4 levels deep).
MAX_DEPTH = 64


class TextFormatError(ValueError):
    """Malformed text; ``line`` is 1-based."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}")


@dataclass(frozen=True)
class Scalar:
    """One value as written: ``kind`` is ``"string"``, ``"number"`` or ``"word"`` (an
    identifier: an enum value, ``true``/``false``, ``inf``/``nan``)."""

    kind: str
    text: str
    line: int

    def describe(self) -> str:
        return repr(self.text) if self.kind == "string" else self.text


@dataclass
class Message:
    """A message: its fields in file order, and the line of its opening brace."""

    line: int = 1
    fields: list[tuple[str, Scalar | Message]] = field(default_factory=list)

    def all(self, name: str) -> list[Scalar | Message]:
        """Every value of field ``name`` (a repeated field), in order."""
        return [v for k, v in self.fields if k == name]

    def names(self) -> list[str]:
        return [k for k, _ in self.fields]


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\f\v]+)
  | (?P<nl>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<badstring>["'])
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fFuUlL]*)
  | (?P<word>-?[A-Za-z_][A-Za-z0-9_.]*)
  | (?P<punct>[{}<>:\[\],;])
""", re.X)


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    line, pos, n = 1, 0, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        if m is None:
            ch = text[pos]
            shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
            raise TextFormatError(line, f"unexpected character {shown}")
        kind = m.lastgroup or ""
        value = m.group()
        if kind == "nl":
            line += 1
        elif kind == "badstring":
            raise TextFormatError(line, "unterminated string")
        elif kind not in ("ws", "comment"):
            if kind == "number" and pos + len(value) < n and (
                    text[pos + len(value)].isalpha() or text[pos + len(value)] == "_"):
                tail = re.match(r"[A-Za-z0-9_.]*", text[pos + len(value):])
                end = tail.group() if tail else ""
                raise TextFormatError(line, f"malformed number {value + end!r}")
            out.append((kind, value, line))
        pos = m.end()
    return out


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "a": "\a",
            "b": "\b", "f": "\f", "v": "\v", "?": "?"}


def _unquote(token: str, line: int) -> str:
    body = token[1:-1]
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt in "01234567":
            octal = re.match(r"[0-7]{1,3}", body[i + 1:])
            digits = octal.group() if octal else nxt
            out.append(chr(int(digits, 8)))
            i += 1 + len(digits)
        elif nxt in "xX":
            m = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2:])
            if not m:
                raise TextFormatError(line, "\\x escape without hex digits")
            out.append(chr(int(m.group(), 16)))
            i += 2 + len(m.group())
        else:
            raise TextFormatError(line, f"unknown escape \\{nxt} in a string")
    return "".join(out)


def parse(text: str) -> Message:
    """Parse protobuf text into a :class:`Message` tree; raise :class:`TextFormatError`
    (with the line) on malformed text."""
    toks = _tokens(text)
    pos = 0
    n = len(toks)
    last_line = toks[-1][2] if toks else 1

    def peek() -> tuple[str, str, int] | None:
        return toks[pos] if pos < n else None

    def scalar(tok: tuple[str, str, int]) -> Scalar:
        nonlocal pos
        kind, value, line = tok
        if kind == "string":
            parts = [_unquote(value, line)]
            pos += 1
            while pos < n and toks[pos][0] == "string":  # "a" "b" is "ab"
                parts.append(_unquote(toks[pos][1], toks[pos][2]))
                pos += 1
            return Scalar("string", "".join(parts), line)
        if kind in ("number", "word"):
            pos += 1
            return Scalar(kind, value, line)
        shown = "end of file" if kind == "eof" else repr(value)
        raise TextFormatError(line, f"expected a value, found {shown}")

    def message(close: str | None, line: int, depth: int) -> Message:
        nonlocal pos
        if depth > MAX_DEPTH:
            raise TextFormatError(line, f"messages nested deeper than {MAX_DEPTH}")
        msg = Message(line=line)
        while True:
            tok = peek()
            if tok is None:
                if close is None:
                    return msg
                raise TextFormatError(last_line, f"file ends inside the message opened on "
                                                 f"line {line} (missing {close!r})")
            kind, value, tline = tok
            if kind == "punct" and value in "}>":
                if close != value:
                    raise TextFormatError(tline, f"unexpected {value!r}"
                                          + ("" if close is None else f" (expected {close!r})"))
                pos += 1
                return msg
            if kind != "word" or value.startswith("-"):
                raise TextFormatError(tline, f"expected a field name, found {value!r}")
            name = value
            pos += 1
            tok = peek()
            if tok is None:
                raise TextFormatError(tline, f"field {name!r} has no value")
            colon = tok[0] == "punct" and tok[1] == ":"
            if colon:
                pos += 1
                tok = peek()
                if tok is None:
                    raise TextFormatError(tline, f"field {name!r} has no value")
            if tok[0] == "punct" and tok[1] in "{<":
                pos += 1
                sub = message("}" if tok[1] == "{" else ">", tok[2], depth + 1)
                msg.fields.append((name, sub))
            elif not colon:
                raise TextFormatError(tok[2], f"expected ':' or '{{' after {name!r}, "
                                              f"found {tok[1]!r}")
            elif tok[0] == "punct" and tok[1] == "[":
                pos += 1
                first = True
                while True:
                    t = peek()
                    if t is None:
                        raise TextFormatError(last_line, f"file ends inside the list of "
                                                         f"{name!r}")
                    if t[0] == "punct" and t[1] == "]":
                        pos += 1
                        break
                    if not first:
                        if not (t[0] == "punct" and t[1] == ","):
                            raise TextFormatError(t[2], f"expected ',' or ']' in the list of "
                                                        f"{name!r}, found {t[1]!r}")
                        pos += 1
                        t = peek()
                        if t is None:
                            raise TextFormatError(last_line, "file ends inside a list")
                    if t[0] == "punct" and t[1] in "{<":
                        pos += 1
                        msg.fields.append((name, message("}" if t[1] == "{" else ">", t[2],
                                                         depth + 1)))
                    else:
                        msg.fields.append((name, scalar(t)))
                    first = False
            else:
                msg.fields.append((name, scalar(tok)))
            t = peek()
            if t is not None and t[0] == "punct" and t[1] in ",;":
                pos += 1

    return message(None, 1, 0)
