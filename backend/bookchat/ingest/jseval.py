"""Read the values of a JavaScript/TypeScript config file without running it.

Docusaurus configs are programs: template literals, `process.env.X ?? 'literal'`, imported
constants and JSON, spreads of shared option objects, ternaries, functions. This module
evaluates the statically knowable part of such a program (literals, objects, arrays, names
bound by `const`/`import`, string and boolean operators, `require('./x.json')`,
`path.resolve(__dirname, ...)`) and turns everything else into `Unknown`, carrying the source
text, so a caller can fall back to a default and name what it could not read. It never raises
on odd input: a construct it does not know is skipped to the next `,`, `;` or closing bracket.

Hand-written rather than running node: node may be missing, and a config that imports
`@docusaurus/*` or the site's own modules cannot be evaluated without `node_modules`.
`process.env` is read as empty, as in a plain local `docusaurus build`.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class Unknown:
    """A value that cannot be known without running the program; `text` is its source."""

    text: str


class _Undefined:
    """JavaScript's `undefined` (Python's None stands for `null`)."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"


UNDEFINED = _Undefined()


@dataclass(frozen=True, slots=True)
class EnvValue:
    """`process.env.NAME`: unset in a static read, so `undefined` to every operator, but a
    caller that gets it as a final value knows the config meant the build's environment."""

    name: str


@dataclass(slots=True)
class Function:
    """A function value; `body` holds the tokens of its block (None for an expression body)."""

    body: list[Token] | None = None
    expression: list[Token] | None = None
    source: str = ""  # the text the tokens' offsets point into


@dataclass(frozen=True, slots=True)
class _Builtin:
    name: str  # "path", "process.env", ...


@dataclass(slots=True)
class Token:
    kind: str  # str num ident punct template regex
    value: Any
    start: int
    end: int
    newline_before: bool = False


@dataclass(slots=True)
class Program:
    """What evaluating a module's top level gave: its bindings, default and named exports."""

    names: dict[str, Any] = field(default_factory=dict)
    default: Any = UNDEFINED
    exports: dict[str, Any] = field(default_factory=dict)


_PUNCT = sorted(
    "... === !== **= <<= >>= >>> &&= ||= ??= => == != <= >= && || ?? ?. ++ -- += -= *= /= %= "  # noqa: SIM905
    "&= |= ^= ** << >> { } ( ) [ ] ; , < > + - * / % & | ^ ! ~ ? : = . @ #".split(),
    key=len,
    reverse=True,
)
_IDENT = re.compile(r"[A-Za-z_$\u00a0-\uffff][\w$\u00a0-\uffff]*")
_NUMBER = re.compile(
    r"0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?n?"
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}
# After these a `/` starts a regular expression, not a division.
_REGEX_AFTER_KEYWORDS = {"return", "typeof", "case", "do", "else", "in", "of", "new", "void"}


class _Lexer:
    def __init__(self, source: str) -> None:
        self.src = source
        self.pos = 0

    def tokens(self, *, stop_at_brace: bool = False) -> list[Token]:
        out: list[Token] = []
        depth = 0
        newline = False
        src = self.src
        while self.pos < len(src):
            ch = src[self.pos]
            if ch in " \t\r\n\ufeff\u00a0\u2028\u2029":
                newline = newline or ch == "\n"
                self.pos += 1
                continue
            if src.startswith("//", self.pos) or (self.pos == 0 and src.startswith("#!")):
                end = src.find("\n", self.pos)
                self.pos = len(src) if end < 0 else end
                continue
            if src.startswith("/*", self.pos):
                end = src.find("*/", self.pos + 2)
                newline = newline or "\n" in src[self.pos : end if end >= 0 else len(src)]
                self.pos = len(src) if end < 0 else end + 2
                continue
            start = self.pos
            if ch in "'\"":
                token = Token("str", self._string(ch), start, self.pos)
            elif ch == "`":
                token = Token("template", self._template(), start, self.pos)
            elif ch == "/" and self._regex_allowed(out):
                self._regex()
                token = Token("regex", src[start : self.pos], start, self.pos)
            elif (m := _NUMBER.match(src, self.pos)) and (ch.isdigit() or ch == "."):
                if m.group() == ".":
                    token = self._punct(start)
                else:
                    self.pos = m.end()
                    token = Token("num", _number(m.group()), start, self.pos)
            elif m := _IDENT.match(src, self.pos):
                self.pos = m.end()
                token = Token("ident", m.group(), start, self.pos)
            else:
                if stop_at_brace and ch == "}" and depth == 0:
                    self.pos += 1
                    return out
                token = self._punct(start)
                if token.value in ("{", "(", "["):
                    depth += 1
                elif token.value in ("}", ")", "]"):
                    depth -= 1
            token.newline_before = newline
            newline = False
            out.append(token)
        return out

    def _punct(self, start: int) -> Token:
        for p in _PUNCT:
            if self.src.startswith(p, start):
                self.pos = start + len(p)
                return Token("punct", p, start, self.pos)
        self.pos = start + 1
        return Token("punct", self.src[start], start, self.pos)

    def _regex_allowed(self, out: list[Token]) -> bool:
        if not out:
            return True
        last = out[-1]
        if last.kind == "punct":
            return last.value not in (")", "]", "}")
        return last.kind == "ident" and last.value in _REGEX_AFTER_KEYWORDS

    def _regex(self) -> None:
        src = self.src
        self.pos += 1
        in_class = False
        while self.pos < len(src) and src[self.pos] != "\n":
            ch = src[self.pos]
            if ch == "\\":
                self.pos += 2
                continue
            if ch == "[":
                in_class = True
            elif ch == "]":
                in_class = False
            elif ch == "/" and not in_class:
                self.pos += 1
                break
            self.pos += 1
        while self.pos < len(src) and (src[self.pos].isalnum()):
            self.pos += 1

    def _escape(self) -> str:
        src = self.src
        ch = src[self.pos + 1] if self.pos + 1 < len(src) else ""
        self.pos += 2
        if ch in _ESCAPES:
            return _ESCAPES[ch]
        if ch == "u" or ch == "x":
            if ch == "u" and src.startswith("{", self.pos):
                end = src.find("}", self.pos)
                digits, self.pos = src[self.pos + 1 : end], end + 1
            else:
                width = 4 if ch == "u" else 2
                digits = src[self.pos : self.pos + width]
                self.pos += width
            try:
                return chr(int(digits, 16))
            except ValueError:
                return ""
        if ch == "\n":
            return ""
        return ch

    def _string(self, quote: str) -> str:
        src = self.src
        self.pos += 1
        out: list[str] = []
        while self.pos < len(src) and src[self.pos] != quote:
            if src[self.pos] == "\\":
                out.append(self._escape())
                continue
            if src[self.pos] == "\n":
                break  # an unterminated string ends at the line, as a lenient reader should
            out.append(src[self.pos])
            self.pos += 1
        self.pos += 1
        return "".join(out)

    def _template(self) -> list[str | list[Token]]:
        """The parts of a template literal: text pieces and the tokens of each `${...}`."""
        src = self.src
        self.pos += 1
        parts: list[str | list[Token]] = []
        text: list[str] = []
        while self.pos < len(src) and src[self.pos] != "`":
            if src[self.pos] == "\\":
                text.append(self._escape())
                continue
            if src.startswith("${", self.pos):
                parts.append("".join(text))
                text = []
                self.pos += 2
                parts.append(self.tokens(stop_at_brace=True))
                continue
            text.append(src[self.pos])
            self.pos += 1
        self.pos += 1
        parts.append("".join(text))
        return parts


def _number(text: str) -> int | float:
    text = text.replace("_", "").rstrip("n")
    try:
        if text[:2].lower() in ("0x", "0b", "0o"):
            return int(text, 0)
        value = float(text)
    except ValueError:
        return 0
    return (
        int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value
    )


# Resolves an import specifier (relative to the importing file) to a module's exports.
Loader = Callable[[str, Path], Program | Any | None]

_BINARY = {
    "??": 1, "||": 2, "&&": 3, "|": 4, "^": 5, "&": 6,
    "==": 7, "!=": 7, "===": 7, "!==": 7,
    "<": 8, ">": 8, "<=": 8, ">=": 8, "instanceof": 8, "in": 8,
    "+": 10, "-": 10, "*": 11, "/": 11, "%": 11, "**": 12,
}  # fmt: skip
_STATEMENT_WORDS = {
    "const", "let", "var", "export", "import", "function", "async", "type", "interface",
    "module", "return", "if", "for", "while", "class", "declare", "enum",
}  # fmt: skip


class _Stop(Exception):
    """A `return` reached at the top of a function body."""

    def __init__(self, value: Any) -> None:
        self.value = value


class Evaluator:
    """Evaluate one module's top level; bindings, exports and unknowns are kept."""

    def __init__(self, source: str, *, file: Path, loader: Loader | None = None) -> None:
        self.src = source
        self.file = file
        self.loader = loader
        try:
            self.toks = _Lexer(source).tokens()
        except (IndexError, ValueError):
            self.toks = []
        self.i = 0
        self.scopes: list[dict[str, Any]] = [
            {"__dirname": file.parent.as_posix(), "__filename": file.as_posix()}
        ]
        self.program = Program(names=self.scopes[0])

    # ---------------------------------------------------------------- token helpers
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def at(self, value: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok.kind in ("punct", "ident") and tok.value == value

    def eat(self, value: str) -> bool:
        if self.at(value):
            self.i += 1
            return True
        return False

    def text(self, start: int, end: int) -> str:
        if start >= len(self.toks) or end <= start:
            return ""
        raw = self.src[self.toks[start].start : self.toks[min(end, len(self.toks)) - 1].end]
        raw = " ".join(raw.split())
        return raw if len(raw) <= 80 else raw[:77] + "..."

    def skip_balanced(self) -> None:
        """Skip one token, or a whole bracketed group when it opens one."""
        tok = self.peek()
        if tok is None:
            return
        self.i += 1
        if tok.kind != "punct" or tok.value not in "([{":
            return
        depth = 1
        while depth and self.i < len(self.toks):
            t = self.toks[self.i]
            if t.kind == "punct" and t.value in "([{":
                depth += 1
            elif t.kind == "punct" and t.value in ")]}":
                depth -= 1
            self.i += 1

    def skip_expression(self) -> None:
        """Skip to the next `,` `;` or closing bracket at this nesting level."""
        while (tok := self.peek()) is not None:
            if tok.kind == "punct" and tok.value in (",", ";", ")", "]", "}"):
                return
            self.skip_balanced()

    def skip_statement(self) -> None:
        first = True
        while (tok := self.peek()) is not None:
            if tok.kind == "punct" and tok.value == ";":
                self.i += 1
                return
            if tok.kind == "punct" and tok.value in (")", "]", "}"):
                return
            starts_statement = tok.kind == "ident" and tok.value in _STATEMENT_WORDS
            if not first and tok.newline_before and starts_statement:
                return
            self.skip_balanced()
            first = False

    # ---------------------------------------------------------------- statements
    def run(self) -> Program:
        """Evaluate the module's top level."""
        while self.i < len(self.toks):
            before = self.i
            try:
                self.statement(top=True)
            except _Stop:
                pass
            except (IndexError, RecursionError, TypeError, ValueError, KeyError):
                self.i = before
                self.skip_statement()
            if self.i == before:
                self.i += 1
        return self.program

    def statement(self, *, top: bool = False) -> None:
        tok = self.peek()
        if tok is None:
            return
        if tok.kind == "punct" and tok.value == ";":
            self.i += 1
        elif self.at("import") and not self.at("(", 1) and not self.at(".", 1):
            self.import_statement()
        elif self.at("export"):
            self.export_statement()
        elif self.at("const") or self.at("let") or self.at("var"):
            self.i += 1
            self.declarations()
        elif self.at("function") or (self.at("async") and self.at("function", 1)):
            name, fn = self.function_declaration()
            if name:
                self.scopes[-1][name] = fn
        elif self.at("module") and self.at(".", 1) and self.at("exports", 2):
            self.i += 3
            if self.eat("="):
                self.program.default = self.expression()
                if isinstance(self.program.default, dict):
                    self.program.exports.update(self.program.default)
            else:
                self.skip_statement()
        elif self.at("return") and not top:
            self.i += 1
            value = self.expression() if not self.at(";") and not self.at("}") else UNDEFINED
            raise _Stop(value)
        else:
            self.skip_statement()

    def import_statement(self) -> None:
        self.i += 1
        if self.eat("type"):
            self.skip_statement()
            return
        bindings: list[tuple[str, str]] = []  # (imported name or "default" or "*", local name)
        if (tok := self.peek()) is not None and tok.kind == "str":
            self.i += 1
            self.eat(";")
            return
        while (tok := self.peek()) is not None and not self.at("from"):
            if tok.kind == "ident":
                self.i += 1
                bindings.append(("default", tok.value))
            elif self.at("*"):
                self.i += 1
                self.eat("as")
                name = self.peek()
                self.i += 1
                if name is not None:
                    bindings.append(("*", str(name.value)))
            elif self.eat("{"):
                while (t := self.peek()) is not None and not self.eat("}"):
                    if t.kind in ("ident", "str") and t.value != "type":
                        imported = str(t.value)
                        self.i += 1
                        local = imported
                        if self.eat("as") and (alias := self.peek()) is not None:
                            local = str(alias.value)
                            self.i += 1
                        bindings.append((imported, local))
                    else:
                        self.i += 1
            elif self.at(","):
                self.i += 1
            else:
                self.skip_statement()
                return
        self.eat("from")
        spec = self.peek()
        self.i += 1
        if spec is None or spec.kind != "str":
            return
        self._bind_module(str(spec.value), bindings)
        if self.eat("with") or self.eat("assert"):
            self.skip_balanced()
        self.eat(";")

    def _bind_module(self, spec: str, bindings: list[tuple[str, str]]) -> None:
        module = self.load(spec)
        for imported, local in bindings:
            if isinstance(module, Program):
                if imported == "*":
                    value: Any = {**module.exports, "default": module.default}
                elif imported == "default":
                    value = module.default
                else:
                    value = module.exports.get(imported, Unknown(f"{imported} from {spec!r}"))
            elif module is None or isinstance(module, Unknown):
                value = Unknown(f"{local} from {spec!r}")
            elif imported in ("default", "*"):
                value = module
            else:
                value = module.get(imported, UNDEFINED) if isinstance(module, dict) else UNDEFINED
            self.scopes[0][local] = value

    def load(self, spec: str) -> Any:
        if spec in ("path", "node:path"):
            return _Builtin("path")
        if self.loader is None:
            return None
        try:
            return self.loader(spec, self.file)
        except (OSError, ValueError, RecursionError):
            return None

    def export_statement(self) -> None:
        self.i += 1
        if self.eat("default"):
            if self.at("function") or (self.at("async") and self.at("function", 1)):
                name, fn = self.function_declaration()
                if name:
                    self.scopes[-1][name] = fn
                self.program.default = fn
            else:
                self.program.default = self.expression()
            return
        if self.eat("="):  # TypeScript's `export = config`
            self.program.default = self.expression()
            return
        if self.at("const") or self.at("let") or self.at("var"):
            self.i += 1
            for name in self.declarations():
                self.program.exports[name] = self.scopes[-1].get(name)
            return
        if self.at("function") or (self.at("async") and self.at("function", 1)):
            name, fn = self.function_declaration()
            if name:
                self.scopes[-1][name] = fn
                self.program.exports[name] = fn
            return
        if self.eat("{"):
            while (t := self.peek()) is not None and not self.eat("}"):
                if t.kind == "ident":
                    self.i += 1
                    exported = t.value
                    if self.eat("as") and (alias := self.peek()) is not None:
                        exported = alias.value
                        self.i += 1
                    value = self.lookup(t.value)
                    if exported == "default":
                        self.program.default = value
                    else:
                        self.program.exports[exported] = value
                else:
                    self.i += 1
            if self.eat("from"):
                self.i += 1
            return
        self.skip_statement()

    def declarations(self) -> list[str]:
        """`a = 1, b: T = 2` after const/let/var; destructuring patterns bind nothing known."""
        names: list[str] = []
        while (tok := self.peek()) is not None:
            if tok.kind == "ident":
                self.i += 1
                if self.eat(":"):
                    self.skip_type(until_equals=True)
                value = self.expression() if self.eat("=") else UNDEFINED
                self.scopes[-1][tok.value] = value
                names.append(tok.value)
            elif self.at("{") or self.at("["):
                start = self.i
                self.skip_balanced()
                pattern = self.text(start, self.i)
                if self.eat("="):
                    self.expression()
                for name in re.findall(r"[A-Za-z_$][\w$]*", pattern):
                    self.scopes[-1][name] = Unknown(name)
            else:
                break
            if not self.eat(","):
                break
        self.eat(";")
        return names

    def function_declaration(self) -> tuple[str | None, Function]:
        self.eat("async")
        self.eat("function")
        self.eat("*")
        name = None
        if (tok := self.peek()) is not None and tok.kind == "ident":
            name = tok.value
            self.i += 1
        if self.at("<"):
            self.skip_angle()
        self.skip_balanced()  # parameters
        if self.eat(":"):
            self.skip_type(until_brace=True)
        return name, Function(body=self.block_tokens(), source=self.src)

    def block_tokens(self) -> list[Token] | None:
        if not self.at("{"):
            return None
        start = self.i
        self.skip_balanced()
        return self.toks[start + 1 : self.i - 1]

    def call_function(self, fn: Function) -> Any:
        """Run a function without arguments: its top-level `return` value, else Unknown."""
        if len(self.scopes) > 8:
            return Unknown("recursive function")
        saved = (self.toks, self.i, self.src)
        self.scopes.append({})
        self.src = fn.source or self.src
        try:
            if fn.expression is not None:
                self.toks, self.i = fn.expression, 0
                return self.expression()
            if fn.body is None:
                return Unknown("function")
            self.toks, self.i = fn.body, 0
            while self.i < len(self.toks):
                before = self.i
                try:
                    self.statement()
                except _Stop as stop:
                    return stop.value
                except (IndexError, TypeError, ValueError, KeyError):
                    self.i = before
                    self.skip_statement()
                if self.i == before:
                    self.i += 1
            return UNDEFINED
        finally:
            self.scopes.pop()
            self.toks, self.i, self.src = saved

    # ---------------------------------------------------------------- types (skipped)
    def skip_angle(self) -> None:
        depth = 0
        while (tok := self.peek()) is not None:
            self.i += 1
            if tok.kind == "punct" and tok.value == "<":
                depth += 1
            elif tok.kind == "punct" and tok.value in (">", ">>", ">>>"):
                depth -= len(tok.value)
                if depth <= 0:
                    return
            elif tok.kind == "punct" and tok.value in "([{":
                self.i -= 1
                self.skip_balanced()

    def skip_type(self, *, until_equals: bool = False, until_brace: bool = False) -> None:
        """Skip a TypeScript type annotation."""
        while (tok := self.peek()) is not None:
            if tok.kind == "punct":
                if tok.value == "=" and until_equals:
                    return
                if tok.value == "{" and until_brace:
                    return
                if tok.value in (",", ";", ")", "]", "}", "=", "=>"):
                    return
                if tok.value == "<":
                    self.skip_angle()
                    continue
            self.skip_balanced()

    def skip_postfix_type(self) -> None:
        """The type after `as` or `satisfies`: names, dots, generics, arrays, unions."""
        while True:
            tok = self.peek()
            if tok is None:
                return
            if tok.kind in ("ident", "str", "num"):
                self.i += 1
            elif self.at("{") or self.at("("):
                self.skip_balanced()
            else:
                return
            while self.eat("."):
                self.i += 1
            if self.at("<"):
                self.skip_angle()
            while self.at("[") and self.at("]", 1):
                self.i += 2
            if not (self.eat("|") or self.eat("&")):
                return

    # ---------------------------------------------------------------- expressions
    def expression(self) -> Any:
        """An assignment-level expression (no comma operator)."""
        start = self.i
        try:
            value = self.conditional()
        except (IndexError, TypeError, ValueError, KeyError, RecursionError):
            self.i = start
            self.skip_expression()
            return Unknown(self.text(start, self.i))
        if (tok := self.peek()) is not None and tok.kind == "punct" and tok.value in (
            "=", "+=", "-=", "||=", "&&=", "??=",
        ):  # fmt: skip
            self.i += 1
            self.expression()
            return Unknown(self.text(start, self.i))
        return value

    def conditional(self) -> Any:
        start = self.i
        if self.is_arrow():
            return self.arrow()
        test = self.binary(0)
        if self.eat("?"):
            yes_start = self.i
            yes = self.expression()
            yes_end = self.i
            self.eat(":")
            no = self.expression()
            truth = _truthy(test)
            if truth is None:
                return Unknown(self.text(start, self.i))
            del yes_start, yes_end
            return yes if truth else no
        return test

    def is_arrow(self) -> bool:
        j = 0
        if self.at("async") and (
            self.at("(", 1) or (self.peek(1) or Token("", "", 0, 0)).kind == "ident"
        ):
            j = 1
        tok = self.peek(j)
        if tok is None:
            return False
        if tok.kind == "ident" and self.at("=>", j + 1):
            return True
        if not (tok.kind == "punct" and tok.value == "("):
            return False
        depth = 0
        k = self.i + j
        while k < len(self.toks):
            t = self.toks[k]
            if t.kind == "punct" and t.value in "([{":
                depth += 1
            elif t.kind == "punct" and t.value in ")]}":
                depth -= 1
                if depth == 0:
                    break
            k += 1
        nxt = self.toks[k + 1] if k + 1 < len(self.toks) else None
        return (
            nxt is not None
            and nxt.kind == "punct"
            and nxt.value in ("=>", ":")
            and (nxt.value == "=>" or self._arrow_after_return_type(k + 1))
        )

    def _arrow_after_return_type(self, k: int) -> bool:
        depth = 0
        while k < len(self.toks):
            t = self.toks[k]
            if t.kind == "punct" and t.value in "([{<":
                depth += 1
            elif t.kind == "punct" and t.value in ")]}>":
                depth -= 1
            elif depth == 0 and t.kind == "punct" and t.value == "=>":
                return True
            elif depth == 0 and t.kind == "punct" and t.value in (",", ";", "?"):
                return False
            k += 1
        return False

    def arrow(self) -> Function:
        self.eat("async")
        self.skip_balanced()  # the parameter or parameter list
        if self.eat(":"):
            while (tok := self.peek()) is not None and not self.at("=>"):
                self.skip_balanced()
                del tok
        self.eat("=>")
        if self.at("{"):
            return Function(body=self.block_tokens(), source=self.src)
        start = self.i
        self.skip_expression()
        return Function(expression=self.toks[start : self.i], source=self.src)

    def binary(self, min_prec: int) -> Any:
        start = self.i
        left = self.unary()
        while (tok := self.peek()) is not None:
            op = tok.value if tok.kind in ("punct", "ident") else None
            if op in ("as", "satisfies") and tok.kind == "ident":
                self.i += 1
                self.skip_postfix_type()
                continue
            prec = _BINARY.get(op) if isinstance(op, str) else None
            if prec is None or prec <= min_prec:
                break
            self.i += 1
            # Short-circuit operators keep an unevaluated right side from leaking Unknown.
            right = self.binary(prec)
            left = _binary(op, left, right)
            if isinstance(left, Unknown) and not left.text:
                left = Unknown(self.text(start, self.i))
        if isinstance(left, Unknown) and not left.text:
            return Unknown(self.text(start, self.i))
        return left

    def unary(self) -> Any:
        start = self.i
        tok = self.peek()
        if tok is None:
            raise IndexError("end of input")
        if tok.kind == "punct" and tok.value in ("!", "-", "+", "~"):
            self.i += 1
            value = self.unary()
            if isinstance(value, Unknown):
                return Unknown(self.text(start, self.i))
            if tok.value == "!":
                truth = _truthy(value)
                return Unknown(self.text(start, self.i)) if truth is None else not truth
            if isinstance(value, int | float) and not isinstance(value, bool):
                return -value if tok.value == "-" else value
            return Unknown(self.text(start, self.i))
        if tok.kind == "ident" and tok.value in ("typeof", "void", "delete", "await", "new"):
            self.i += 1
            value = self.unary()
            if tok.value == "await":
                return value
            if tok.value == "typeof" and not isinstance(value, Unknown):
                return _typeof(value)
            return Unknown(self.text(start, self.i))
        return self.postfix()

    def postfix(self) -> Any:
        start = self.i
        value = self.primary()
        this: Any = None
        while (tok := self.peek()) is not None and tok.kind == "punct":
            if tok.value in (".", "?."):
                self.i += 1
                if self.at("("):
                    this, value = value, self.call(value, None, start)
                    continue
                if self.at("["):
                    continue
                name_tok = self.peek()
                self.i += 1
                name = str(name_tok.value) if name_tok else ""
                this, value = value, _member(value, name)
            elif tok.value == "[":
                if tok.newline_before:
                    break
                self.i += 1
                key = self.expression()
                self.eat("]")
                this, value = value, _member(value, key)
            elif tok.value == "(":
                value = self.call(value, this, start)
                this = None
            elif tok.value == "!" and not self.at("=", 1):
                nxt = self.peek(1)
                if nxt is not None and nxt.kind == "punct" and nxt.value in ".,;)]}":
                    self.i += 1  # TypeScript's non-null assertion
                else:
                    break
            elif tok.value in ("++", "--"):
                self.i += 1
                return Unknown(self.text(start, self.i))
            else:
                break
            if isinstance(value, Unknown) and not value.text:
                value = Unknown(self.text(start, self.i))
        return value

    def call(self, callee: Any, this: Any, start: int) -> Any:
        args: list[Any] = []
        self.eat("(")
        last = -1  # a stray closing bracket must end the loop, not spin on it
        while not self.at(")") and self.peek() is not None:
            if self.i == last:
                break
            last = self.i
            if self.eat("..."):
                self.expression()
                args.append(Unknown("..."))
            else:
                args.append(self.expression())
            if not self.eat(","):
                break
        self.eat(")")
        result = self.apply(callee, this, args)
        if isinstance(result, Unknown):
            return Unknown(self.text(start, self.i))
        return result

    def apply(self, callee: Any, this: Any, args: list[Any]) -> Any:
        if isinstance(callee, _Method):
            return callee.apply(args)
        if isinstance(callee, _Builtin):
            if callee.name == "require" and args and isinstance(args[0], str):
                module = self.load(args[0])
                if isinstance(module, Program):
                    return module.default if module.default is not UNDEFINED else module.exports
                return module if module is not None else Unknown("")
            if callee.name == "require.resolve" and args and isinstance(args[0], str):
                return args[0]
            joinable = bool(args) and all(isinstance(a, str) for a in args)
            if callee.name in ("path.resolve", "path.join") and joinable:
                return posixpath.normpath(posixpath.join(*args))
            if callee.name == "String" and args and isinstance(args[0], str | int | float):
                return _to_string(args[0])
            if callee.name == "Boolean" and args:
                truth = _truthy(args[0])
                return Unknown("") if truth is None else truth
        if isinstance(callee, Function) and not args:
            return self.call_function(callee)
        return Unknown("")

    def primary(self) -> Any:
        tok = self.peek()
        if tok is None:
            raise IndexError("end of input")
        start = self.i
        if tok.kind == "str" or tok.kind == "num":
            self.i += 1
            return tok.value
        if tok.kind == "template":
            self.i += 1
            return self.template(tok, start)
        if tok.kind == "regex":
            self.i += 1
            return Unknown(tok.value)
        if tok.kind == "punct":
            if tok.value == "(":
                self.i += 1
                value = self.expression()
                while self.eat(","):
                    value = self.expression()
                self.eat(")")
                return value
            if tok.value == "{":
                return self.object_literal()
            if tok.value == "[":
                return self.array_literal()
            if tok.value == "<":  # a JSX element or a type assertion: not a config value
                self.skip_expression()
                return Unknown(self.text(start, self.i))
            raise ValueError(f"unexpected {tok.value!r}")
        word = tok.value
        self.i += 1
        if word in ("true", "false"):
            return word == "true"
        if word == "null":
            return None
        if word == "undefined":
            return UNDEFINED
        if word == "function" or (word == "async" and self.at("function")):
            self.i -= 1
            return self.function_declaration()[1]
        if word == "class":
            self.skip_expression()
            return Unknown(self.text(start, self.i))
        if word == "process" and self.at(".") and self.at("env", 1):
            self.i += 2
            return _Builtin("process.env")
        if word == "require":
            if self.at(".") and self.at("resolve", 1):
                self.i += 2
                return _Builtin("require.resolve")
            return _Builtin("require")
        if word in ("String", "Boolean"):
            return _Builtin(word)
        if word == "import" and self.at("("):
            self.skip_balanced()
            return Unknown(self.text(start, self.i))
        return self.lookup(word)

    def lookup(self, name: str) -> Any:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return Unknown(name)

    def template(self, tok: Token, start: int) -> Any:
        out: list[str] = []
        for part in tok.value:
            if isinstance(part, str):
                out.append(part)
                continue
            saved = (self.toks, self.i)
            self.toks, self.i = part, 0
            try:
                value = self.expression()
            finally:
                self.toks, self.i = saved
            text = _to_string(value)
            if text is None:
                return Unknown(self.src[tok.start : tok.end])
            out.append(text)
        return "".join(out)

    def object_literal(self) -> dict[str, Any]:
        self.eat("{")
        result: dict[str, Any] = {}
        last = -1  # a stray closing bracket must end the loop, not spin on it
        while (tok := self.peek()) is not None and not self.eat("}"):
            if self.i == last:
                break
            last = self.i
            if self.eat(","):
                continue
            if self.eat("..."):
                spread = self.expression()
                if isinstance(spread, dict):
                    result.update(spread)
                continue
            key: Any
            is_method_word = tok.kind == "ident" and tok.value in ("get", "set", "async")
            if (
                is_method_word
                and not self.at(":", 1)
                and not self.at("(", 1)
                and not self.at(",", 1)
                and not self.at("}", 1)
            ):
                self.i += 1  # `get x() {}`, `async x() {}`
                tok = self.peek() or tok
            if tok.kind in ("ident", "str", "num"):
                key = _to_string(tok.value)
                self.i += 1
            elif self.eat("["):
                key = self.expression()
                self.eat("]")
                key = _to_string(key) if not isinstance(key, Unknown) else None
            elif self.at("*"):
                self.i += 1
                continue
            else:
                self.skip_expression()
                continue
            self.eat("?")
            if self.eat(":"):
                value = self.expression()
            elif self.at("(") or self.at("<"):
                if self.at("<"):
                    self.skip_angle()
                self.skip_balanced()
                if self.eat(":"):
                    self.skip_type(until_brace=True)
                value = Function(body=self.block_tokens(), source=self.src)
            else:
                value = self.lookup(str(key)) if key is not None else UNDEFINED
            if key is not None:
                result[key] = value
            if not self.eat(","):
                if self.eat("}"):
                    break
                self.skip_expression()
                self.eat(",")
        return result

    def array_literal(self) -> list[Any]:
        self.eat("[")
        result: list[Any] = []
        last = -1  # a stray closing bracket must end the loop, not spin on it
        while self.peek() is not None and not self.eat("]"):
            if self.i == last:
                break
            last = self.i
            if self.eat(","):
                result.append(UNDEFINED)
                continue
            if self.eat("..."):
                spread = self.expression()
                if isinstance(spread, list):
                    result.extend(spread)
                else:
                    result.append(spread if isinstance(spread, Unknown) else Unknown("..."))
            else:
                result.append(self.expression())
            if not self.eat(","):
                if self.eat("]"):
                    break
                self.skip_expression()
                self.eat(",")
        return result


@dataclass(frozen=True, slots=True)
class _Method:
    """A known method bound to its receiver: `versions.slice`, `list.includes`, ..."""

    receiver: Any
    name: str

    def apply(self, args: list[Any]) -> Any:
        r, name = self.receiver, self.name
        if any(isinstance(a, Unknown) for a in args):
            return Unknown("")
        if isinstance(r, list | str) and name == "slice":
            bounds = [int(a) for a in args if isinstance(a, int | float)]
            return r[slice(*bounds[:2])] if bounds else r[:]
        if isinstance(r, list | str) and name == "includes" and args:
            return args[0] in r
        if isinstance(r, list | str) and name == "indexOf" and args:
            return r.index(args[0]) if args[0] in r else -1
        if isinstance(r, list) and name == "concat":
            out = list(r)
            for a in args:
                out.extend(a if isinstance(a, list) else [a])
            return out
        if isinstance(r, list) and name == "join":
            sep = args[0] if args and isinstance(args[0], str) else ","
            parts = [_to_string(x) for x in r]
            return Unknown("") if any(p is None for p in parts) else sep.join(parts)  # type: ignore[arg-type]
        if isinstance(r, str):
            simple = {
                "toLowerCase": str.lower, "toUpperCase": str.upper, "trim": str.strip,
            }  # fmt: skip
            if name in simple:
                return simple[name](r)
            if name in ("startsWith", "endsWith") and args and isinstance(args[0], str):
                return r.startswith(args[0]) if name == "startsWith" else r.endswith(args[0])
            if name == "replace" and len(args) == 2 and all(isinstance(a, str) for a in args):
                return r.replace(args[0], args[1], 1)
        return Unknown("")


_LIST_METHODS = {"slice", "includes", "indexOf", "concat", "join"}
_STR_METHODS = {"slice", "includes", "indexOf", "toLowerCase", "toUpperCase", "trim"} | {
    "startsWith", "endsWith", "replace",
}  # fmt: skip


def _member(value: Any, key: Any) -> Any:
    if isinstance(value, Unknown) or isinstance(key, Unknown):
        return Unknown("")
    if isinstance(value, _Builtin):
        if value.name == "process.env":
            return EnvValue(str(key))  # a plain local build's environment: nothing set
        if value.name == "path" and key in ("resolve", "join"):
            return _Builtin(f"path.{key}")
        if value.name == "require" and key == "resolve":
            return _Builtin("require.resolve")
        return Unknown("")
    if isinstance(value, dict):
        if isinstance(key, int | float) and not isinstance(key, bool):
            key = _to_string(key)
        return value.get(key, UNDEFINED) if isinstance(key, str) else UNDEFINED
    if isinstance(value, list | str):
        if key == "length":
            return len(value)
        if isinstance(key, float) and key.is_integer():
            key = int(key)
        if isinstance(key, int) and not isinstance(key, bool):
            return value[key] if 0 <= key < len(value) else UNDEFINED
        if isinstance(key, str) and key in (
            _LIST_METHODS if isinstance(value, list) else _STR_METHODS
        ):
            return _Method(value, key)
        return Unknown("")
    if value is None or value is UNDEFINED:
        return Unknown("")  # a TypeError in JavaScript; the config author meant something else
    return Unknown("")


def _truthy(value: Any) -> bool | None:
    if isinstance(value, Unknown):
        return None
    if value is UNDEFINED or value is None or isinstance(value, EnvValue):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str):
        return value != ""
    return True


def _typeof(value: Any) -> str:
    if value is UNDEFINED or isinstance(value, EnvValue):
        return "undefined"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Function | _Builtin | _Method):
        return "function"
    return "object"


def _to_string(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if value is None:
        return "null"
    if value is UNDEFINED:
        return "undefined"
    return None


def _strict_equal(a: Any, b: Any) -> bool:
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return type(a) is type(b) and a == b if not isinstance(a, int | float) else a == b


def _binary(op: str, left: Any, right: Any) -> Any:
    left = UNDEFINED if isinstance(left, EnvValue) and op not in ("&&", "||", "??") else left
    right = UNDEFINED if isinstance(right, EnvValue) and op not in ("&&", "||", "??") else right
    if op in ("&&", "||", "??"):
        if op == "??":
            if isinstance(left, Unknown):
                return Unknown("")
            return (
                right if left is None or left is UNDEFINED or isinstance(left, EnvValue) else left
            )
        truth = _truthy(left)
        if truth is None:
            return Unknown("")
        if op == "&&":
            return right if truth else left
        return left if truth else right
    if isinstance(left, Unknown) or isinstance(right, Unknown):
        return Unknown("")
    if op in ("===", "!=="):
        same = _strict_equal(left, right)
        return same if op == "===" else not same
    if op in ("==", "!="):
        nullish = {id(None), id(UNDEFINED)}
        if id(left) in nullish or id(right) in nullish:
            same = id(left) in nullish and id(right) in nullish
        else:
            same = left == right
        return same if op == "==" else not same
    if op == "+":
        if isinstance(left, str) or isinstance(right, str):
            ls, rs = _to_string(left), _to_string(right)
            return Unknown("") if ls is None or rs is None else ls + rs
        if _is_number(left) and _is_number(right):
            return left + right
        return Unknown("")
    if _is_number(left) and _is_number(right):
        if op == "-":
            return left - right
        if op == "*":
            return left * right
        if op in ("<", ">", "<=", ">="):
            return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[
                op
            ]
    if isinstance(left, str) and isinstance(right, str) and op in ("<", ">", "<=", ">="):
        return {"<": left < right, ">": left > right, "<=": left <= right, ">=": left >= right}[op]
    return Unknown("")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_MODULE_SUFFIXES = ("", ".ts", ".js", ".mjs", ".cjs", ".mts", ".cts", ".json")


def file_loader(*, root: Path, max_depth: int = 3) -> Loader:
    """Load relative imports (and `@site/...`) of JSON and JS/TS modules under `root`."""
    cache: dict[Path, Any] = {}
    depth = [0]

    def load(spec: str, importer: Path) -> Any:
        if spec.startswith("@site/"):
            base = root / spec[len("@site/") :]
        elif spec.startswith((".", "/")):
            base = (importer.parent / spec) if not spec.startswith("/") else Path(spec)
        else:
            return None  # a package from node_modules: unknown without installing the site
        candidates = [Path(f"{base}{s}") for s in _MODULE_SUFFIXES]
        candidates += [base / f"index{s}" for s in _MODULE_SUFFIXES[1:]]
        target = next((c for c in candidates if c.is_file()), None)
        if target is None:
            return None
        target = target.resolve()
        if target in cache:
            return cache[target]
        if target.stat().st_size > 2_000_000:
            return None
        text = target.read_text(encoding="utf-8", errors="replace")
        if target.suffix == ".json":
            cache[target] = json.loads(text)
            return cache[target]
        if depth[0] >= max_depth:
            return None
        cache[target] = None  # an import cycle reads as unknown
        depth[0] += 1
        try:
            cache[target] = Evaluator(text, file=target, loader=load).run()
        finally:
            depth[0] -= 1
        return cache[target]

    return load


def evaluate_module(path: Path, *, root: Path | None = None) -> Program:
    """Evaluate the file at `path`; imports resolve relative to it and `@site/` to `root`."""
    source = path.read_text(encoding="utf-8", errors="replace")
    loader = file_loader(root=root or path.parent)
    return Evaluator(source, file=path, loader=loader).run()


def default_export(path: Path, *, root: Path | None = None) -> Any:
    """The value a config module exports; Docusaurus calls an exported (async) function.

    Raises OSError or UnicodeDecodeError when the file cannot be read as UTF-8 text.
    """
    source = path.read_bytes().decode("utf-8-sig")
    evaluator = Evaluator(source, file=path, loader=file_loader(root=root or path.parent))
    value = evaluator.run().default
    if isinstance(value, Function):
        value = evaluator.call_function(value)
    return value
