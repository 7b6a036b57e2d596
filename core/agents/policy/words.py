"""Shell words as a command sees them: their static text, GNU-style options and their values.

A word's text may be only partly known (`"$x"`, `$(cmd)`); these helpers say what is certain about it, and refuse
(`deny`) where an option's meaning would depend on something only known at run time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from always_on.core.agents.policy.decision import deny
from always_on.core.agents.shell_parse import Part, Word


def slice_word(word: Word, start: int) -> Word:
    """The word without its first `start` characters (the value of `--opt=value`, of `-n5`)."""
    parts: list[Part] = []
    skip = start
    for p in word.parts:
        if skip >= len(p.text) and not (p.dynamic and skip == 0):
            skip -= len(p.text)
            continue
        if skip and not p.dynamic:
            p = Part(p.text[skip:], p.quoted, p.dynamic, p.scripts)
        skip = 0
        parts.append(p)
    return Word(tuple(parts) or (Part("", quoted=True),))


def literal_prefix(word: Word) -> str:
    """The word's text up to its first unquoted glob character."""
    out = []
    for p in word.parts:
        if not p.quoted and not p.dynamic:
            cut = min((p.text.index(c) for c in "*?[" if c in p.text), default=None)
            if cut is not None:
                out.append(p.text[:cut])
                break
        out.append(p.text)
    return "".join(out)


def leading_text(word: Word) -> str:
    """The static text the word starts with (up to its first expansion)."""
    out = []
    for p in word.parts:
        if p.dynamic:
            break
        out.append(p.text)
    return "".join(out)


DYNAMIC = Word(
    (Part("{}", quoted=True, dynamic=True),)
)  # an argument only known at run time (xargs input, find's {})


@dataclass
class Opt:
    name: str  # "-n" or "--lines"
    value: Word | None
    word: Word


def is_option(word: Word) -> bool:
    lead = leading_text(word)
    return lead.startswith("-") and lead != "-" and word.value != "-"


def parse_options(
    args: Sequence[Word],
    short_values: str = "",
    long_values: Iterable[str] = (),
    *,
    stop_at_positional: bool = False,
) -> tuple[list[Opt], list[Word]]:
    """GNU-style option parsing: `-abc`, `-n5`, `-n 5`, `--name=value`, `--name value`, `--`."""
    long_values = set(long_values)
    opts: list[Opt] = []
    positionals: list[Word] = []
    i = 0
    while i < len(args):
        w = args[i]
        if not is_option(w):
            if stop_at_positional:
                positionals.extend(args[i:])
                break
            positionals.append(w)
            i += 1
            continue
        if w.static and w.value == "--":
            positionals.extend(args[i + 1 :])
            break
        lead = leading_text(w)
        if lead.startswith("--"):
            text = w.value if w.static else lead
            name, eq, _ = text.partition("=")
            if not eq and not w.static:
                deny(f"option `{w.value}` is only known at run time")
            if _prefix_has_glob(w, len(name)):
                deny(f"option `{w.value}` contains a glob: its meaning depends on file names")
            value: Word | None = slice_word(w, len(name) + 1) if eq else None
            if value is None and name in long_values and i + 1 < len(args):
                value = args[i + 1]
                i += 1
            opts.append(Opt(name, value, w))
        else:
            j = 1
            while j < len(lead):
                c = lead[j]
                if c in short_values:
                    if j + 1 < len(w.value if w.static else lead) or not w.static:
                        value = slice_word(w, j + 1)
                    elif i + 1 < len(args):
                        value = args[i + 1]
                        i += 1
                    else:
                        value = None
                    opts.append(Opt("-" + c, value, w))
                    break
                if _prefix_has_glob(w, j + 1):
                    deny(f"option `{w.value}` contains a glob: its meaning depends on file names")
                opts.append(Opt("-" + c, None, w))
                j += 1
            else:
                if not w.static:
                    deny(f"option `{w.value}` is only known at run time")
        i += 1
    return opts, positionals


def _prefix_has_glob(word: Word, length: int) -> bool:
    """Whether the first `length` characters hold an unquoted glob character."""
    seen = 0
    for p in word.parts:
        if seen >= length:
            break
        chunk = p.text[: length - seen]
        if not p.quoted and not p.dynamic and any(c in chunk for c in "*?["):
            return True
        seen += len(p.text)
    return False


def has_option(opts: Sequence[Opt], *names: str) -> bool:
    return any(o.name in names for o in opts)


def option_values(opts: Sequence[Opt], *names: str) -> list[Word]:
    return [o.value for o in opts if o.name in names and o.value is not None]


def show_words(words: Sequence[Word], limit: int = 6) -> str:
    text = " ".join(w.value for w in words[:limit])
    return text + (" ..." if len(words) > limit else "")


def plain(word: Word) -> str | None:
    return word.value if word.static else None


def looks_like_path(text: str) -> bool:
    return text.startswith(("/", "~", "./", "../")) or text in (".", "..") or "/" in text
