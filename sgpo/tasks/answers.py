"""Reading the final answer out of a completion the way graders do, and plain numbers out of answers.

    final_answer("The answer is \\$1,000. Check: 2 * 500 = 1000.")   -> "1000"
    final_answer("The answer is 42. Wait, actually 43.")             -> "43"
    as_number("\\frac{3}{4}") -> Fraction(3, 4);   as_number("1e3") -> Fraction(1000, 1)

The rule (docs/REWARDS.md): an explicit marker (`#### X`, `\\boxed{X}`, "the answer is X", "final
answer: X", "answer: X") wins over bare numbers, and the last marker wins; after `####` and "the answer
is" the answer must come first ("#### Step 1: add" is a heading). A correction after the marker
("actually", "correction", "sorry", "oops", "I mean", "I made a mistake") replaces it with the last
number of the correcting sentence. With no marker, the last number (or power, fraction, LaTeX group)
counts. Pure string work: nothing here evaluates model output.
"""

from __future__ import annotations

import re
from fractions import Fraction

# A number as written in prose: 1,000  -3.5  1e3; a fraction 3/4 or \frac{3}{4}; powers 2^{10}, 9^9^9.
_NUM = r"(?<![\w.])-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
_BRACED = r"\{(?:[^{}]|\{[^{}]*\})*\}"  # two levels of nesting: enough for 10^{10^{10}}
_SCALE = r"\s*(?:\\times|\\cdot|×)\s*10\^(?:\{-?\d+\}|-?\d+)"  # 1.5 \times 10^{3}
_POWERS = rf"(?:\s*(?:\^|\*\*)\s*(?:{_BRACED}|-?\d+))*"
_ATOM = re.compile(rf"-?\\[dt]?frac{_BRACED}{_BRACED}|{_NUM}(?:{_SCALE}|/\d+)?{_POWERS}")
_LATEX_CHAR = r"(?:[^$\\]|\\[^$])"
_MATH_GROUP = re.compile(  # $...$ only around a LaTeX command, else it is money: "$5 or $6"
    rf"\$\$(.{{1,300}}?)\$\$|(?<!\\)\$({_LATEX_CHAR}{{0,300}}?\\[a-zA-Z]{_LATEX_CHAR}{{0,300}}?)\$"
    r"|\\\((.{1,300}?)\\\)|\\\[(.{1,300}?)\\\]",
    re.S,
)

_HASHES = re.compile(r"####[ \t]*([^\n]*)")
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_PHRASE = re.compile(
    r"\b(?:final\s+answer|answer)\s*(?:(?:is|was|will\s+be|would\s+be|should\s+be)\b|[=:])\s*:?\s*", re.I
)
_SENTENCE_END = re.compile(r"[.!?;](?=\s|$)|\n")
_CORRECTION = re.compile(
    r"(?:^|[.!?;,:(\n])\s*(?:(?:but|no|oh|hmm|wait)\W+)*"
    r"(?P<cue>actually|correction|sorry|oops|i\s+meant?\b|i\s+made\s+an?\s+(?:mistake|error))",
    re.I,
)
_PROSE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{2,}")  # a word, not a LaTeX command name
_SPAN_LIMIT = 300  # characters read after a marker: answers are short, and repeated garbage stays linear time
_BRACE = re.compile(r"[{}]")

_MONEY = re.compile(r"\\?\$|€|£|¥|\\euro|\\pounds")  # and math delimiters: $\frac{1}{2}$ reads \frac{1}{2}
_UNIT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mbox)\s*\{([^{}]*)\}")
_THOUSANDS = re.compile(r"(?<=\d)(?:,|\{,\}|\\,)(?=\d{3}(?!\d))")
_LATEX_SPACE = re.compile(r"\\[,;:! ]|\\q?quad|~")
_DEGREES = re.compile(r"\^\s*\{?\\circ\}?|°")
_EDGES = re.compile(r"^[\s*]+|[\s*.]+$")  # markdown bold, a full stop

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d{1,3})?")  # bounded exponent: 1e999999 is no fast path
_RATIO = re.compile(r"([+-]?\d+)/(\d+)")
_LATEX_FRAC = re.compile(r"([+-]?)\\[dt]?frac\{([+-]?\d+)\}\{(\d+)\}")
_SCIENTIFIC = re.compile(r"(.+?)(?:\\times|\\cdot|×|\*|x)10\^\{?([+-]?\d{1,3})\}?")


def final_answer(completion: str, *, words: bool = False, strict: bool = False) -> str | None:
    """The completion's final answer, normalised (see `normalise`), or None when it holds none.

    "The answer is" must be followed by a number or math, unless `words` (the gold is a word): "the
    answer is not obvious. 6 * 7 = 42" reads 42. `strict`: without a marker, only a completion that is
    one answer and nothing else ("18", "$18.", "\\frac{1}{2}") has one; the last number of prose
    ("2odnoci", "she makes 18 dollars") is none."""
    text = (completion or "").replace("−", "-")  # the Unicode minus sign
    for _start, raw, end, leading in sorted(_markers(text), key=lambda m: m[0], reverse=True):  # last one wins
        value = _leading_value(raw, words) if leading else clean_answer(raw)
        if value is not None:
            return _corrected(text, end) or value
    if strict:
        return _whole_answer(text)
    candidates = [(m.end(), -m.start(), m.group()) for m in _ATOM.finditer(text)]
    candidates += [(m.end(), -m.start(), _group(m)) for m in _MATH_GROUP.finditer(text)]
    return clean_answer(max(candidates)[2]) if candidates else None


def _whole_answer(text: str) -> str | None:
    """The completion as one answer (a number, fraction, power or LaTeX group, money signs and a full stop
    allowed around it), or None when it holds anything else."""
    text = text.strip()
    group = _MATH_GROUP.fullmatch(text)
    if group:
        return clean_answer(_group(group))
    s = normalise(text)
    return s if s and _ATOM.fullmatch(s) else None


def normalise(answer: str) -> str:
    """Money signs, thousands separators, LaTeX spacing, %, degrees and unit words removed: `\\$1{,}000.` -> `1000`."""
    s = _UNIT_WRAPPER.sub(lambda m: m.group(1) if re.search(r"\d", m.group(1)) else " ", answer)
    if not s.strip():  # the whole answer was text (\text{Paris}): keep the words
        s = _UNIT_WRAPPER.sub(r"\1", answer)
    s = _MONEY.sub("", s).replace("−", "-")
    s = _THOUSANDS.sub("", s)
    s = _LATEX_SPACE.sub(" ", s)
    s = _DEGREES.sub("", s).replace("\\%", "").replace("%", "")
    return _EDGES.sub("", s)


def as_number(answer: str) -> Fraction | None:
    """The exact value of a plain number, fraction or scientific notation; None for anything else."""
    s = re.sub(r"\s+", "", normalise(answer))
    if len(s) > 1000:  # Python refuses to convert integers of over 4,300 digits; no answer is that long
        return None
    if m := _SCIENTIFIC.fullmatch(s):
        mantissa = as_number(m.group(1))
        return None if mantissa is None else mantissa * Fraction(10) ** int(m.group(2))
    if m := _LATEX_FRAC.fullmatch(s):
        value = _fraction(m.group(2), m.group(3))
        return -value if value is not None and m.group(1) == "-" else value
    if m := _RATIO.fullmatch(s):
        return _fraction(m.group(1), m.group(2))
    return Fraction(s) if _DECIMAL.fullmatch(s) else None


def _fraction(numerator: str, denominator: str) -> Fraction | None:
    return Fraction(int(numerator), int(denominator)) if int(denominator) else None


def _markers(text: str):
    """(start, raw answer, where a correction may begin, whether only the raw text's start counts) per marker."""
    for m in _HASHES.finditer(text):  # "#### Step 1: add" is a markdown heading, not an answer: read the start
        yield m.start(), m.group(1)[:_SPAN_LIMIT], m.end(), True
    for m in _BOXED.finditer(text):
        end = _closing_brace(text, m.end())
        if end is not None:
            yield m.start(), text[m.end() : end], end + 1, False
    for m in _PHRASE.finditer(text):
        stop = _SENTENCE_END.search(text, m.end(), m.end() + _SPAN_LIMIT)
        end = stop.start() if stop else min(len(text), m.end() + _SPAN_LIMIT)
        yield m.start(), text[m.end() : end], m.end(), True  # "is 42, actually 43": corrections from the answer on


def _closing_brace(text: str, start: int) -> int | None:
    depth = 1
    for brace in _BRACE.finditer(text, start, start + _SPAN_LIMIT):
        depth += 1 if brace.group() == "{" else -1
        if depth == 0:
            return brace.start()
    return None  # unbalanced (cut off) or too long: not an answer


def _corrected(text: str, after: int) -> str | None:
    """The last number of the first sentence, from the last correction after `after` on, that has one."""
    cues = list(_CORRECTION.finditer(text, after))
    if not cues:
        return None
    start = cues[-1].start("cue")
    while start < len(text):
        stop = _SENTENCE_END.search(text, start)
        end = stop.end() if stop else len(text)
        atoms = _ATOM.findall(text, start, end)
        if atoms:
            return clean_answer(atoms[-1])
        start = end
    return None


def clean_answer(raw: str) -> str | None:
    """A boxed, #### or gold answer, normalised: the whole math, or the first number of prose ("18 dollars")."""
    group = _MATH_GROUP.search(raw)
    s = normalise(_group(group) if group else raw)
    if not s:
        return None
    if as_number(s) is None and _PROSE.search(s):  # "18 dollars", "42, since 6 * 7 = 42": the first number
        atom = _ATOM.search(s)
        return normalise(atom.group()) if atom else s
    return s


def _leading_value(raw: str, words: bool) -> str | None:
    """The answer right after "the answer is" or ####: the number or math it starts with (or words, if asked).

    "The answer is: Janet sells 16 - 3 = 13 eggs..." has no answer there; the marker is skipped."""
    group = _MATH_GROUP.match(raw.lstrip())
    s = normalise(_group(group) if group else raw)
    if not s or as_number(s) is not None or not _PROSE.search(s):
        return s or None
    if not re.search(r"\d", s):
        return s if words else None
    atom = _ATOM.match(s)
    return normalise(atom.group()) if atom else None


def _group(match: re.Match) -> str:
    return next(g for g in match.groups() if g)
