"""A small POSIX/bash command-line parser, so the permission policy reasons about commands, not glob patterns.

It understands what an agent's one-liners use: quotes, escapes, `;` `&&` `||` `|` `&` and newlines, subshells
`( )`, groups `{ }`, `$(...)` and backticks (parsed recursively), `$X`/`${X}`, ANSI-C `$'...'`, globs, brace
expansion, `A=b cmd` assignments and redirections. Anything whose meaning it cannot pin down (heredocs, process
substitution, arithmetic, control-flow keywords, function definitions, unbalanced quotes...) raises
`ShellParseError`: the policy denies what it cannot understand.

Hand-written rather than on shlex: shlex does not see `$(...)`, backticks, `2>&1` or `$'...'`, and such gaps
between what the checker reads and what the shell runs are where bypasses hide. Words follow bash; constructs
that /bin/sh (dash) reads differently are refused (`&>`, `|&`).
"""

from __future__ import annotations

import glob as globmod
import itertools
import re
from dataclasses import dataclass, field

MAX_DEPTH = 6
MAX_BRACE_WORDS = 256

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SPECIAL_PARAMS = set("0123456789@*#?$!-")
# `${NAME}`, `${#NAME}`, `${NAME:-word}`, `${NAME%pat}`, `${NAME/a/b}`, `${NAME^^}`... Substrings (`${x:1}`),
# indirection (`${!x}`), `@` transforms and subscripts evaluate arithmetic or prompts, which can run commands.
_PARAM_RE = re.compile(
    r"#?(?:[A-Za-z_][A-Za-z0-9_]*|[0-9]+|[@*#?$!-])(?:(?::?[-=?+]|%%?|##?|//?|\^\^?|,,?)[^$`()\[\]\"'\\{}!@]*)?"
)
_WORD_END = set(" \t\n;&|()<>")
_RESERVED = {
    "if", "then", "else", "elif", "fi", "do", "done", "case", "esac", "while", "until", "for", "select",
    "function", "in", "[[", "]]", "coproc",
}  # fmt: skip


class ShellParseError(ValueError):
    """The command line cannot be understood with confidence; the message says what was not understood."""


@dataclass(frozen=True)
class Part:
    """A piece of a word: literal text (quoted or not) or an expansion only known at run time."""

    text: str
    quoted: bool = False
    dynamic: bool = False
    scripts: tuple[Script, ...] = ()


@dataclass(frozen=True)
class Word:
    parts: tuple[Part, ...]

    @staticmethod
    def literal(text: str) -> Word:
        """A word that reaches the program exactly as given (an argv element, no shell involved)."""
        return Word((Part(text, quoted=True),))

    @property
    def static(self) -> bool:
        return not any(p.dynamic for p in self.parts)

    @property
    def value(self) -> str:
        """The word after quote removal (expansions appear as their source text, e.g. `$X`)."""
        return "".join(p.text for p in self.parts)

    @property
    def unquoted_exact(self) -> str | None:
        """The text if the word is one unquoted literal (how reserved words and `{`/`}` are recognised)."""
        if len(self.parts) == 1 and not self.parts[0].quoted and not self.parts[0].dynamic:
            return self.parts[0].text
        return None

    @property
    def has_glob(self) -> bool:
        return any(not p.quoted and not p.dynamic and any(c in p.text for c in "*?[") for p in self.parts)

    @property
    def glob_pattern(self) -> str:
        return "".join(globmod.escape(p.text) if p.quoted or p.dynamic else p.text for p in self.parts)

    @property
    def has_tilde(self) -> bool:
        first = self.parts[0] if self.parts else None
        return bool(first and not first.quoted and not first.dynamic and first.text.startswith("~"))

    @property
    def scripts(self) -> tuple[Script, ...]:
        return tuple(s for p in self.parts for s in p.scripts)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Redirect:
    op: str  # one of < > >> >| <> <& >& &> &>> <<<
    fd: int | None
    target: Word


@dataclass
class Simple:
    assignments: list[tuple[str, Word]] = field(default_factory=list)
    words: list[Word] = field(default_factory=list)
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Group:
    body: Script
    subshell: bool
    redirects: list[Redirect] = field(default_factory=list)


@dataclass
class Pipeline:
    commands: list[Simple | Group]
    negated: bool = False  # `! cmd`: success and failure swap, which matters for where `cd` leaves us


@dataclass
class AndOr:
    first: Pipeline
    rest: list[tuple[str, Pipeline]] = field(default_factory=list)


@dataclass
class Script:
    """A command list: each item is an and-or list, and whether it runs in the background (`&`)."""

    items: list[tuple[AndOr, bool]] = field(default_factory=list)

    def __hash__(self) -> int:  # Parts are frozen and may hold scripts
        return id(self)


@dataclass(frozen=True)
class _Tok:
    kind: str  # "word" | "op" | "redir" | "newline" | "eof"
    text: str = ""
    word: Word | None = None
    fd: int | None = None


_ANSI_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "e": "\x1b",
                "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"}  # fmt: skip


def _decode_ansi_c(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= len(body):
            raise ShellParseError("dangling backslash in $'...'")
        n = body[i + 1]
        if n in _ANSI_SIMPLE:
            out.append(_ANSI_SIMPLE[n])
            i += 2
        elif n in "01234567":
            m = re.match(r"[0-7]{1,3}", body[i + 1 :])
            assert m
            out.append(chr(int(m.group(), 8) & 0xFF))
            i += 1 + len(m.group())
        elif n in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[n]
            m = re.match(rf"[0-9A-Fa-f]{{1,{size}}}", body[i + 2 :])
            if not m:
                raise ShellParseError(f"unsupported escape \\{n} in $'...'")
            out.append(chr(int(m.group(), 16)))
            i += 2 + len(m.group())
        else:
            raise ShellParseError(f"unsupported escape \\{n} in $'...'")
    return "".join(out)


class _Parser:
    def __init__(self, text: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ShellParseError("commands nested too deeply")
        self.s = text
        self.i = 0
        self.depth = depth
        self._peeked: _Tok | None = None

    # ---- lexer -------------------------------------------------------------------------------------------

    def _skip_blanks(self) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in " \t":
                self.i += 1
            elif c == "\\" and s.startswith("\\\n", self.i):
                self.i += 2
            elif c == "#":
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
            else:
                break

    def peek(self) -> _Tok:
        if self._peeked is None:
            self._peeked = self._lex()
        return self._peeked

    def take(self) -> _Tok:
        tok = self.peek()
        self._peeked = None
        return tok

    def _lex(self) -> _Tok:
        self._skip_blanks()
        s, i = self.s, self.i
        if i >= len(s):
            return _Tok("eof")
        c = s[i]
        if c == "\n":
            self.i += 1
            return _Tok("newline", "\n")
        for op in ("&&", "||", ";;", ";&", "|&", "&>>", "&>", ";", "&", "|", "(", ")"):
            if s.startswith(op, i):
                if op in (";;", ";&"):
                    raise ShellParseError(f"`{op}` (case syntax) is not supported")
                if op in ("&>", "&>>", "|&"):
                    # /bin/sh (dash) reads `a &> f b` as `a &` then `> f b`: a different command than bash runs
                    raise ShellParseError(f"`{op}` means different things in sh and bash; use `> file 2>&1`")
                self.i += len(op)
                return _Tok("op", op)
        if c in "<>":
            return self._lex_redir(None)
        word = self._lex_word()
        if self.i < len(s) and s[self.i] in "<>":
            exact = word.unquoted_exact
            if exact is not None and exact.isdigit():
                return self._lex_redir(int(exact))
            if exact is not None and re.fullmatch(r"\{[A-Za-z_][A-Za-z0-9_]*\}", exact):
                raise ShellParseError("`{var}>` file-descriptor redirections are not supported")
        return _Tok("word", word.value, word)

    def _lex_redir(self, fd: int | None) -> _Tok:
        s, i = self.s, self.i
        if s.startswith("<(", i) or s.startswith(">(", i):
            raise ShellParseError("process substitution `<(...)`/`>(...)` is not supported")
        for op in ("<<<", "<<-", "<<", ">>", ">|", "<>", "<&", ">&", "<", ">"):
            if s.startswith(op, i):
                if op in ("<<", "<<-"):
                    raise ShellParseError(
                        "heredocs (`<<`) are not supported: their content cannot be checked"
                    )
                self.i += len(op)
                return _Tok("redir", op, fd=fd)
        raise ShellParseError("bad redirection")  # pragma: no cover - the caller saw < or >

    def _lex_word(self) -> Word:
        s = self.s
        parts: list[Part] = []
        buf: list[str] = []

        def flush() -> None:
            if buf:
                parts.append(Part("".join(buf)))
                buf.clear()

        while self.i < len(s):
            c = s[self.i]
            if c in _WORD_END:
                break
            if c == "\\":
                if self.i + 1 >= len(s):
                    raise ShellParseError("dangling backslash at the end of the command")
                if s[self.i + 1] == "\n":
                    self.i += 2
                    continue
                flush()
                parts.append(Part(s[self.i + 1], quoted=True))
                self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise ShellParseError("unbalanced single quote")
                flush()
                parts.append(Part(s[self.i + 1 : end], quoted=True))
                self.i = end + 1
            elif c == '"':
                flush()
                self.i += 1
                parts.extend(self._lex_double_quoted())
            elif c == "$":
                flush()
                parts.append(self._lex_dollar(in_double=False))
            elif c == "`":
                flush()
                parts.append(self._lex_backtick(in_double=False))
            else:
                buf.append(c)
                self.i += 1
        flush()
        if not parts:
            raise ShellParseError(f"unexpected `{s[self.i] if self.i < len(s) else 'end of input'}`")
        return Word(tuple(parts))

    def _lex_double_quoted(self) -> list[Part]:
        s = self.s
        parts: list[Part] = []
        buf: list[str] = []
        while True:
            if self.i >= len(s):
                raise ShellParseError("unbalanced double quote")
            c = s[self.i]
            if c == '"':
                self.i += 1
                break
            if c == "\\" and self.i + 1 < len(s) and s[self.i + 1] in '$`"\\\n':
                if s[self.i + 1] != "\n":
                    buf.append(s[self.i + 1])
                self.i += 2
            elif c == "$":
                if buf:
                    parts.append(Part("".join(buf), quoted=True))
                    buf.clear()
                parts.append(self._lex_dollar(in_double=True))
            elif c == "`":
                if buf:
                    parts.append(Part("".join(buf), quoted=True))
                    buf.clear()
                parts.append(self._lex_backtick(in_double=True))
            else:
                buf.append(c)
                self.i += 1
        if buf or not parts:
            parts.append(Part("".join(buf), quoted=True))
        return parts

    def _lex_dollar(self, in_double: bool) -> Part:
        s = self.s
        start = self.i
        nxt = s[self.i + 1] if self.i + 1 < len(s) else ""
        if nxt == "[":
            raise ShellParseError("arithmetic expansion `$[...]` is not supported")
        if nxt == "(":
            if s.startswith("$((", self.i):
                raise ShellParseError("arithmetic expansion `$((...))` is not supported")
            self.i += 2
            script = self.parse_list(terminators={")"})
            tok = self.take()
            if tok.kind != "op" or tok.text != ")":
                raise ShellParseError("unbalanced `$(`")
            return Part(s[start : self.i], quoted=in_double, dynamic=True, scripts=(script,))
        if nxt == "{":
            end = s.find("}", self.i + 2)
            if end < 0:
                raise ShellParseError("unbalanced `${`")
            body = s[self.i + 2 : end]
            if not _PARAM_RE.fullmatch(body):
                raise ShellParseError(f"parameter expansion `${{{body}}}` is too complex to check")
            self.i = end + 1
            return Part(s[start : self.i], quoted=in_double, dynamic=True)
        if nxt == "'" and not in_double:
            j = self.i + 2
            while j < len(s) and s[j] != "'":
                j += 2 if s[j] == "\\" else 1
            if j >= len(s):
                raise ShellParseError("unbalanced $'...' quote")
            text = _decode_ansi_c(s[self.i + 2 : j])
            self.i = j + 1
            return Part(text, quoted=True)
        if nxt == '"' and not in_double:
            self.i += 2
            inner = self._lex_double_quoted()
            if len(inner) != 1 or inner[0].dynamic:
                raise ShellParseError('locale strings $"..." with expansions are not supported')
            return inner[0]
        m = _NAME_RE.match(s, self.i + 1)
        if m:
            self.i = m.end()
            return Part(s[start : self.i], quoted=in_double, dynamic=True)
        if nxt and nxt in _SPECIAL_PARAMS:
            self.i += 2
            return Part(s[start : self.i], quoted=in_double, dynamic=True)
        self.i += 1
        return Part("$", quoted=True)

    def _lex_backtick(self, in_double: bool) -> Part:
        s = self.s
        j = self.i + 1
        inner: list[str] = []
        escapable = '`\\$"' if in_double else "`\\$"  # bash also unescapes \" inside "`...`"
        while j < len(s) and s[j] != "`":
            if s[j] == "\\" and j + 1 < len(s) and s[j + 1] in escapable:
                inner.append(s[j + 1])
                j += 2
            else:
                inner.append(s[j])
                j += 1
        if j >= len(s):
            raise ShellParseError("unbalanced backtick")
        source = s[self.i : j + 1]
        self.i = j + 1
        script = parse("".join(inner), depth=self.depth + 1)
        return Part(source, quoted=in_double, dynamic=True, scripts=(script,))

    # ---- grammar -----------------------------------------------------------------------------------------

    def _skip_newlines(self) -> None:
        while self.peek().kind == "newline":
            self.take()

    def _at_terminator(self, terminators: set[str]) -> bool:
        tok = self.peek()
        if tok.kind == "eof":
            return True
        if tok.kind == "op" and tok.text in terminators:
            return True
        return (
            tok.kind == "word"
            and "}" in terminators
            and tok.word is not None
            and (tok.word.unquoted_exact == "}")
        )

    def parse_list(self, terminators: set[str]) -> Script:
        script = Script()
        self._skip_newlines()
        while not self._at_terminator(terminators):
            andor = self._parse_andor()
            tok = self.peek()
            background = False
            if tok.kind == "op" and tok.text in (";", "&"):
                background = tok.text == "&"
                self.take()
            elif tok.kind == "newline":
                self.take()
            elif not self._at_terminator(terminators):
                raise ShellParseError(f"unexpected `{tok.text or tok.kind}`")
            script.items.append((andor, background))
            self._skip_newlines()
        return script

    def _parse_andor(self) -> AndOr:
        andor = AndOr(self._parse_pipeline())
        while self.peek().kind == "op" and self.peek().text in ("&&", "||"):
            op = self.take().text
            self._skip_newlines()
            andor.rest.append((op, self._parse_pipeline()))
        return andor

    def _parse_pipeline(self) -> Pipeline:
        negated = False
        while True:
            tok = self.peek()
            exact = tok.word.unquoted_exact if tok.kind == "word" and tok.word is not None else None
            if exact == "!":
                self.take()
                negated = not negated
            elif exact == "time":
                self.take()
                nxt = self.peek()
                if nxt.kind == "word" and nxt.word is not None and nxt.word.unquoted_exact == "-p":
                    self.take()
            else:
                break
        commands = [self._parse_command()]
        while self.peek().kind == "op" and self.peek().text in ("|", "|&"):
            self.take()
            self._skip_newlines()
            commands.append(self._parse_command())
        return Pipeline(commands, negated)

    def _parse_command(self) -> Simple | Group:
        tok = self.peek()
        if tok.kind == "op" and tok.text == "(":
            if self.s.startswith("(", self.i):
                raise ShellParseError("arithmetic command `((...))` is not supported")
            self.take()
            body = self.parse_list(terminators={")"})
            end = self.take()
            if end.kind != "op" or end.text != ")":
                raise ShellParseError("unbalanced `(`")
            return Group(body, subshell=True, redirects=self._parse_redirects())
        if tok.kind == "word" and tok.word is not None:
            exact = tok.word.unquoted_exact
            if exact == "{":
                self.take()
                body = self.parse_list(terminators={"}"})
                end = self.take()
                if end.kind != "word" or end.word is None or end.word.unquoted_exact != "}":
                    raise ShellParseError("unbalanced `{`")
                return Group(body, subshell=False, redirects=self._parse_redirects())
            if exact in _RESERVED:
                raise ShellParseError(f"shell keyword `{exact}` (control flow) is not supported")
        if tok.kind not in ("word", "redir"):
            raise ShellParseError(f"unexpected `{tok.text or tok.kind}`")
        return self._parse_simple()

    def _parse_redirects(self) -> list[Redirect]:
        redirects = []
        while self.peek().kind == "redir":
            redirects.append(self._parse_redirect())
        return redirects

    def _parse_redirect(self) -> Redirect:
        tok = self.take()
        target = self.take()
        if target.kind != "word" or target.word is None:
            raise ShellParseError(f"redirection `{tok.text}` without a target")
        return Redirect(tok.text, tok.fd, target.word)

    def _parse_simple(self) -> Simple:
        cmd = Simple()
        while True:
            tok = self.peek()
            if tok.kind == "redir":
                cmd.redirects.append(self._parse_redirect())
            elif tok.kind == "word" and tok.word is not None:
                self.take()
                assignment = None if cmd.words else split_assignment(tok.word)
                if assignment:
                    cmd.assignments.append(assignment)
                else:
                    cmd.words.append(tok.word)
            else:
                break
        if self.peek().kind == "op" and self.peek().text == "(":
            raise ShellParseError("function definitions and `word(` syntax are not supported")
        return cmd


def split_assignment(word: Word) -> tuple[str, Word] | None:
    """`NAME=value` → (NAME, value) when the name part is unquoted, as the shell recognises assignments."""
    first = word.parts[0]
    if first.quoted or first.dynamic:
        return None
    m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(\+?)=", first.text)
    if not m:
        if re.match(r"[A-Za-z_][A-Za-z0-9_]*\[", first.text) and "=" in word.value:
            raise ShellParseError("array assignments are not supported")
        return None
    rest = first.text[m.end() :]
    parts = ((Part(rest),) if rest else ()) + word.parts[1:]
    return m.group(1), Word(parts or (Part("", quoted=True),))


def parse(text: str, depth: int = 0) -> Script:
    """Parse a command line; raises ShellParseError for anything it cannot understand with confidence."""
    parser = _Parser(text, depth)
    script = parser.parse_list(terminators=set())
    tok = parser.take()
    if tok.kind != "eof":
        raise ShellParseError(f"unexpected `{tok.text}`")
    return script


# ---- brace expansion ------------------------------------------------------------------------------------


def _explode(word: Word) -> list[Part]:
    """Unquoted literal text split into one-character parts, so braces can be found; other parts kept whole."""
    out: list[Part] = []
    for p in word.parts:
        if p.quoted or p.dynamic:
            out.append(p)
        else:
            out.extend(Part(c) for c in p.text)
    return out


def _is(part: Part, char: str) -> bool:
    return not part.quoted and not part.dynamic and part.text == char


def _merge(parts: list[Part]) -> Word:
    merged: list[Part] = []
    for p in parts:
        if merged and not p.quoted and not p.dynamic and not merged[-1].quoted and not merged[-1].dynamic:
            merged[-1] = Part(merged[-1].text + p.text)
        else:
            merged.append(p)
    return Word(tuple(merged) or (Part("", quoted=True),))


def _range(body: list[Part]) -> list[str] | None:
    if any(p.quoted or p.dynamic for p in body):
        return None
    text = "".join(p.text for p in body)
    m = re.fullmatch(r"(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?", text)
    if m:
        a, b = int(m.group(1)), int(m.group(2))
        step = abs(int(m.group(3) or 1)) or 1
        if abs(b - a) // step > MAX_BRACE_WORDS:
            raise ShellParseError("brace range too large")
        seq = range(a, b + 1, step) if a <= b else range(a, b - 1, -step)
        return [str(n) for n in seq]
    m = re.fullmatch(r"([A-Za-z])\.\.([A-Za-z])", text)
    if m:
        a, b = ord(m.group(1)), ord(m.group(2))
        seq = range(a, b + 1) if a <= b else range(a, b - 1, -1)
        return [chr(n) for n in seq]
    return None


def _expand(parts: list[Part]) -> list[list[Part]]:
    for start, p in enumerate(parts):
        if not _is(p, "{"):
            continue
        depth, commas, end = 0, [], None
        for j in range(start + 1, len(parts)):
            if _is(parts[j], "{"):
                depth += 1
            elif _is(parts[j], "}"):
                if depth == 0:
                    end = j
                    break
                depth -= 1
            elif _is(parts[j], ",") and depth == 0:
                commas.append(j)
        if end is None:
            continue
        prefix, suffix = parts[:start], parts[end + 1 :]
        if commas:
            bounds = [start, *commas, end]
            alternatives = [parts[a + 1 : b] for a, b in itertools.pairwise(bounds)]
        else:
            items = _range(parts[start + 1 : end])
            if items is None:
                continue
            alternatives = [[Part(item)] for item in items]
        results: list[list[Part]] = []
        for alt in alternatives:
            results.extend(_expand(prefix + alt + suffix))
            if len(results) > MAX_BRACE_WORDS:
                raise ShellParseError("brace expansion produces too many words")
        return results
    return [parts]


def expand_braces(word: Word) -> list[Word]:
    """Bash brace expansion (`{a,b}`, `{1..3}`) of the word's unquoted text; other words are returned as is."""
    if not any(not p.quoted and not p.dynamic and "{" in p.text for p in word.parts):
        return [word]
    return [_merge(parts) for parts in _expand(_explode(word))]


__all__ = [
    "AndOr",
    "Group",
    "Part",
    "Pipeline",
    "Redirect",
    "Script",
    "ShellParseError",
    "Simple",
    "Word",
    "expand_braces",
    "parse",
    "split_assignment",
]
