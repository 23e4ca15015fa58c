"""The plain-language interpreter: ``interpret(prompt, schema)`` turns a request into a requirement spec.

Deterministic and offline: ``grammar.lark`` reads the shape of the request
(a count, then clauses: comparisons, ranges, sets, negations, shares, rules);
the resolver maps each phrase onto the data (see :mod:`vocabulary`: case,
plurals, synonyms from metadata, word stems, close spellings). Every word of
the request ends up in the spec or in an error: anything the interpreter
cannot place is refused with the words quoted and what it knows listed.
Corrections it makes (a close spelling, a stem) are listed in the notes, for
the user to confirm.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedInput

from engine.requirements.vocabulary import _MISSING, ColumnInfo, InterpretError, Vocabulary, norm, singular

_SMALL = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_SUFFIX = {"k": 1_000, "m": 1_000_000, "mn": 1_000_000, "b": 1_000_000_000, "bn": 1_000_000_000}
_FRACS = {"half": 2, "halve": 2, "third": 3, "quarter": 4, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
          "eighth": 8, "ninth": 9, "tenth": 10, "hundredth": 100}
_NEGATE = {"gt": "<=", "ge": "<", "lt": ">=", "le": ">"}
_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
# Words a request may use for its rows; any other last word of the head is taken as the rows' name too, and noted.
_ROW_WORDS = {"row", "record", "sample", "entry", "example", "line", "item", "observation", "instance"}


@lru_cache(maxsize=1)
def _parser() -> Lark:
    text = resources.files("engine.requirements").joinpath("grammar.lark").read_text()
    return Lark(text, parser="earley", lexer="basic", ambiguity="resolve", propagate_positions=True)


@dataclass
class Interpretation:
    """What a request asked for, as spec fields, with notes on the words the interpreter read loosely."""

    request: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    row_name: str | None = None

    def to_spec(self, **fields: Any):
        """A :class:`RequirementSpec` of the request plus ``fields`` (``data=``, ``model=``, ``output=``, ...)."""
        from engine.requirements.spec import load_spec

        return load_spec({**self.request, **{k: v for k, v in fields.items() if v is not None}})


def interpret(prompt: str, schema: Any, *, metadata: dict[str, Any] | None = None, num_rows: int | None = None) -> Interpretation:
    """Read a plain-language request against a data set's schema.

    Args:
        prompt: e.g. ``"10k rows where fraud = 1 and age between 30 and 50"``.
        schema: the data (a DataFrame or a CSV/Parquet path), a fitted synthesizer, or a mapping
            ``{"columns": {name: {"kind", "values", "synonyms", "value_synonyms"}}}``.
        metadata: more synonyms, in the mapping's shape.
        num_rows: the count when the request gives none (else a request without a count is refused).

    Returns:
        an :class:`Interpretation` whose ``request`` holds ``num_rows``, ``conditions``, ``mixture`` and
        ``constraints`` as a :class:`~engine.requirements.spec.RequirementSpec` takes them.

    Raises:
        InterpretError: quoting the words that could not be placed and listing the known columns (or values).
    """
    if not isinstance(prompt, str) or not prompt.strip():
        raise InterpretError("The request is empty: say how many rows and what they should look like.")
    vocab = Vocabulary.from_any(schema, metadata)
    text = _expand_contractions(prompt)
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise InterpretError(_syntax_message(text, exc, vocab)) from None
    return _Resolver(vocab, text, num_rows).run(tree)


def _expand_contractions(text: str) -> str:
    for short, long in (("isn't", "is not"), ("aren't", "are not"), ("doesn't", "does not"), ("don't", "do not"),
                        ("’", "'")):
        text = text.replace(short, long).replace(short.capitalize(), long.capitalize())
    return text


def _syntax_message(text: str, exc: UnexpectedInput, vocab: Vocabulary) -> str:
    pos = getattr(exc, "pos_in_stream", None)
    if pos is None or pos < 0 or pos >= len(text):  # the request ended too early
        where = "at its end: it stops in the middle of a clause"
    else:
        where = f"from {' '.join(text[pos:].split()[:4])!r} on (character {pos + 1})"
    return (
        f"Cannot read the request {text!r} {where}. Write it as a count and clauses, e.g. "
        "'1000 rows where age between 30 and 50 and sex is Female, 20% of them with income = \">50K\"'. "
        f"The columns are: {vocab.known_columns()}."
    )


def _words(node: Tree | Token) -> list[str]:
    if isinstance(node, Token):
        return [str(node)]
    return [str(t) for t in node.scan_values(lambda t: isinstance(t, Token))]


def _phrase_text(node: Tree) -> str:
    return " ".join(w for w in _words(node) if w.lower() not in ("a", "an", "the"))


def _quote(text: str, node: Tree) -> str:
    """The words of the request a node was read from, as the user wrote them."""
    meta = getattr(node, "meta", None)
    if meta is not None and not getattr(meta, "empty", True):
        return text[meta.start_pos:meta.end_pos]
    return _phrase_text(node)


def number_of(node: Tree | Token) -> float:
    """The number a ``count``/``number`` node (or NUMBER token) says: 10,000, 10k, 1.5m, "ten thousand", "2 million"."""
    if isinstance(node, Token):
        return _number_token(str(node))
    if node.data == "negative_number":
        return -number_of(Tree("number", node.children))
    if node.data == "numwords":
        return _number_words(_words(node))
    kids = node.children
    if kids and isinstance(kids[0], Tree) and kids[0].data == "numwords":
        return _number_words(_words(kids[0]))
    value = _number_token(str(kids[0]))
    for scale in kids[1:]:
        value *= _SCALES[singular(str(scale).lower())]
    return value


def _number_token(text: str) -> float:
    t = text.lower().replace(",", "")
    for suffix in ("mn", "bn", "k", "m", "b"):
        if t.endswith(suffix):
            return float(t[: -len(suffix)]) * _SUFFIX[suffix]
    return float(t)


def _number_words(words: list[str]) -> float:
    total = current = 0
    for w in (w.lower() for w in words):
        if w in ("a", "an"):
            current = max(current, 1)
        elif w in _SMALL:
            current += _SMALL[w]
        elif w in _TENS:
            current += _TENS[w]
        else:
            scale = _SCALES[singular(w)]
            current = max(current, 1)
            if scale == 100:
                current *= 100
            else:
                total += current * scale
                current = 0
    return float(total + current)


def _plain(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def fraction_of(node: Tree) -> float:
    kids = node.children
    if node.data == "percent":
        return _number_token(str(kids[0])) / 100
    if node.data == "one_frac":
        return 1 / _FRACS[singular(str(kids[-1]).lower())]
    if node.data == "many_frac":
        return _count_word(kids[0]) / _FRACS[singular(str(kids[1]).lower())]
    if node.data == "one_in":
        return _count_word(kids[0]) / _count_word(kids[-1])
    if node.data == "slash_frac":
        return _number_token(str(kids[0])) / _number_token(str(kids[1]))
    raise AssertionError(node.data)  # the grammar has no other fraction


def _count_word(tok: Token) -> float:
    return float(_SMALL[str(tok).lower()]) if tok.type == "NUMWORD" else _number_token(str(tok))


class _Resolver:
    """Walks the parse tree and maps each clause onto the vocabulary, building the spec's fields."""

    def __init__(self, vocab: Vocabulary, text: str, num_rows: int | None):
        self.vocab, self.text, self.default_rows = vocab, text, num_rows
        self.notes: list[str] = []
        self.conditions: dict[str, Any] = {}
        self.mixture: dict[str, dict[Any, float]] = {}
        self.constraints: list[dict[str, Any]] = []
        self.num_rows: int | None = None
        self.row_name: str | None = None

    # ------------------------------------------------------------ top level
    def run(self, tree: Tree) -> Interpretation:
        request = tree.children[0]
        for node in request.children:
            if node.data == "head":
                self.head(node)
            else:
                getattr(self, "clause_" + node.data)(node)
        if self.num_rows is None:
            if self.default_rows is None:
                raise InterpretError(f"The request {self.text!r} does not say how many rows: start it with a count, e.g. '1000 rows where ...'.")
            self.num_rows = self.default_rows
        mixture = self.finish_mixture()
        out: dict[str, Any] = {"num_rows": self.num_rows}
        if self.conditions:
            out["conditions"] = self.conditions
        if mixture:
            out["mixture"] = mixture
        if self.constraints:
            out["constraints"] = self.constraints
        return Interpretation(out, self.notes, self.row_name)

    def head(self, node: Tree) -> None:
        count = number_of(node.children[0])
        if count < 1 or not float(count).is_integer():
            raise InterpretError(f"The count {_plain(count)!r} in {self.text!r} must be a whole number of rows, at least 1.")
        if self.num_rows is not None:
            raise InterpretError(f"The request {self.text!r} gives the count twice ({self.num_rows} and {int(count)}).")
        self.num_rows = int(count)
        if len(node.children) > 1:
            words = _words(node.children[1])
            # "1000 female customers": words before the rows' name are values.
            rest = self.leading_values(words, allow_noun=True, where="the count's phrase")
            for column, value in rest:
                self.set_condition(column, value, " ".join(words))

    # --------------------------------------------------------------- clauses
    def clause_compare(self, node: Tree) -> None:
        column = self.subject(node.children[0])
        op, value_node = node.children[1], node.children[2]
        kind = op.children[0].data if op.data == "op" else op.data
        label = self.label_written_as_comparison(column, op, value_node)
        if label is not _MISSING:
            self.set_condition(column, label, _quote(self.text, node))
        elif kind == "op_eq":
            self.set_condition(column, self.value_for(column, value_node), _quote(self.text, node))
        else:
            self.add_range(column, {_OPS[kind]: self.number_for(column, value_node)}, node)

    def label_written_as_comparison(self, column: ColumnInfo, op: Tree, value_node: Tree) -> Any:
        """The category whose label the comparison spells out ("income >50K" when '>50K' is a label), or _MISSING.

        Labels such as Adult's '>50K' and '<=50K' read as comparisons, which never apply to a column
        of categories; the words as written, spaces aside, are then matched against the labels.
        """
        if column.numeric or not column.values or op.meta.empty or value_node.meta.empty:
            return _MISSING
        written = "".join(self.text[op.meta.start_pos:value_node.meta.end_pos].split()).lower()
        hits = [v for v in column.values if "".join(str(v).split()).lower() == written]
        return hits[0] if len(hits) == 1 else _MISSING

    def clause_range(self, node: Tree) -> None:
        column = self.subject(node.children[0])
        low, high = (self.number_for(column, v) for v in node.children[1:3])
        if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low > high:
            low, high = high, low
        self.add_range(column, {"between": [low, high]}, node)

    def clause_in_set(self, node: Tree) -> None:
        column = self.subject(node.children[0])
        values = node.children[1].children if node.children[1].data == "value_list" else node.children[1:]
        labels = [self.value_for(column, v) for v in values]
        self.put(column, {"in": _unique(labels)}, node)

    def clause_not_in_set(self, node: Tree) -> None:
        column = self.subject(node.children[0])
        labels = [self.value_for(column, v) for v in node.children[1].children]
        self.exclude(column, labels, node)

    def clause_not_equal(self, node: Tree) -> None:
        column = self.subject(node.children[0])
        self.exclude(column, [self.value_for(column, node.children[1])], node)

    def clause_not_compare(self, node: Tree) -> None:
        column = self.subject(node.children[0])
        self.add_range(column, {_NEGATE[node.children[1].data]: self.number_for(column, node.children[2])}, node)

    def clause_negated(self, node: Tree) -> None:
        column, value = self.bare_value(node.children[-1], negate=True)
        if isinstance(value, _Excluded):
            self.exclude(column, [value.label], node)
        else:
            self.set_condition(column, value, _quote(self.text, node))

    def clause_bare(self, node: Tree) -> None:
        words = _words(node)
        if len(words) == 1 and singular(words[0]) in _ROW_WORDS:  # "rows where ...": the rows' name, without a count
            self.row_name = words[0]
            return
        column, value = self.bare_value(node.children[0])
        if isinstance(value, _Excluded):
            self.exclude(column, [value.label], node)
        else:
            self.set_condition(column, value, _quote(self.text, node))

    def clause_share(self, node: Tree) -> None:
        share = fraction_of(node.children[0])
        body = node.children[-1]
        if not 0 < share <= 1:
            raise InterpretError(f"The share {_phrase_text(node.children[0])!r} in {self.text!r} is not between 0 and 100%.")
        if body.data == "compare":
            column = self.subject(body.children[0])
            op = body.children[1]
            label = self.label_written_as_comparison(column, op, body.children[2])
            if label is _MISSING:
                if op.children[0].data != "op_eq":
                    raise InterpretError(
                        f"A share can only be given of a column's value ('20% with fraud = 1', 'a fifth of them female'); "
                        f"{_quote(self.text, node)!r} gives it of a range. Give a range as a condition on every row instead."
                    )
                label = self.value_for(column, body.children[2])
        else:
            column, label = self.bare_value(body.children[-1], negate=body.data == "negated")
            if isinstance(label, _Excluded):
                raise InterpretError(f"A share of 'not {label.label}' in {_quote(self.text, node)!r} is ambiguous: give the share of a value.")
        if column.numeric and not column.values:
            raise InterpretError(f"A share needs a column of categories; {column.name!r} is numeric ({_quote(self.text, node)!r}).")
        shares = self.mixture.setdefault(column.name, {})
        if label in shares:
            raise InterpretError(f"The share of {column.name} = {label!r} is given twice in {self.text!r}.")
        shares[label] = share

    def clause_rule_compare(self, node: Tree) -> None:
        where = self.rule_subject(node.children[0])
        column = self.subject(node.children[1])
        op = node.children[2].data
        bound = self.number_for(column, node.children[3])
        if not column.numeric or column.kind == "datetime":
            raise InterpretError(f"A rule can bound a numeric column; {column.name!r} is not one ({_quote(self.text, node)!r}).")
        low, high = (bound, None) if op in ("gt", "ge") else (None, bound)
        self.add_rule(where, column, low, high, node, strict=op in ("gt", "lt"))

    def clause_rule_range(self, node: Tree) -> None:
        where = self.rule_subject(node.children[0])
        column = self.subject(node.children[1])
        low, high = sorted(self.number_for(column, v) for v in node.children[2:4])
        self.add_rule(where, column, low, high, node, strict=False)

    # -------------------------------------------------------------- helpers
    def add_rule(self, where: dict[str, Any], column: ColumnInfo, low: Any, high: Any, node: Tree, strict: bool) -> None:
        if strict:
            self.notes.append(f"the rule {_quote(self.text, node)!r} is kept as a closed bound (constraints clip to the bound itself)")
        entry: dict[str, Any] = {"column": column.name}
        if low is not None:
            entry["low"] = low
        if high is not None:
            entry["high"] = high
        if where:
            self.constraints.append({"type": "conditional_bounds", "where": where, **entry})
        else:
            self.constraints.append({"type": "bounds", **entry})

    def rule_subject(self, node: Tree) -> dict[str, Any]:
        """``every premium customer`` -> ``{tier: premium}``; ``every row`` -> ``{}`` (a plain bound)."""
        words = _words(node)
        where: dict[str, Any] = {}
        for column, value in self.leading_values([w for w in words if w.lower() not in ("a", "an", "the")],
                                                 allow_noun=True, where="the rule's subject"):
            if isinstance(value, _Excluded):
                raise InterpretError(f"A rule's subject cannot be a negation ({' '.join(words)!r}).")
            where[column.name] = value
        return where

    def leading_values(self, words: list[str], *, allow_noun: bool, where: str) -> list[tuple[ColumnInfo, Any]]:
        """Values named by ``words`` left to right (longest phrase first); the last word may be the rows' name."""
        found: list[tuple[ColumnInfo, Any]] = []
        i = 0
        while i < len(words):
            for j in range(len(words), i, -1):
                hit = self.try_bare(" ".join(words[i:j]))
                if hit is not None:
                    found.append(hit)
                    i = j
                    break
            else:
                if allow_noun and i == len(words) - 1:
                    self.name_rows(words[i])
                    i += 1
                else:
                    raise self.unknown(" ".join(words[i:]), where)
        return found

    def name_rows(self, word: str) -> None:
        if singular(word) not in _ROW_WORDS:
            self.notes.append(f"read {word!r} as the name of the rows")
        self.row_name = word

    def subject(self, node: Tree) -> ColumnInfo:
        text = _phrase_text(node)
        column = self.vocab.column(text, self.notes)
        if column is None:
            raise InterpretError(
                f"No column is called {text!r} (in {self.text!r}).{self.vocab.suggest(text, list(self.vocab.columns))} "
                f"The columns are: {self.vocab.known_columns()}."
            )
        return column

    def value_for(self, column: ColumnInfo, node: Tree) -> Any:
        """The label (discrete columns) or number (numeric) a value node names for ``column``."""
        if node.data == "number_value":
            number = _plain(number_of(node.children[0]))
            if column.values:
                for v in column.values:
                    if not isinstance(v, str) and v == number or norm(v) == norm(number):
                        return v
                raise self.bad_value(column, str(number))
            if column.kind in ("categorical", "other"):
                raise self.bad_value(column, str(number))
            return number
        text = str(node.children[0])[1:-1] if node.data == "text_value" else _phrase_text(node.children[0])
        if column.numeric and not column.values:
            if column.kind == "datetime":
                return text
            raise InterpretError(f"Column {column.name!r} is numeric: {text!r} is not a number (in {self.text!r}).")
        label = self.vocab.value(column, text, self.notes)
        if label is _MISSING:
            flags = column.flag_values()
            if flags and norm(text) in ("true", "yes"):
                return flags[0]
            if flags and norm(text) in ("false", "no"):
                return flags[1]
            raise self.bad_value(column, text)
        return label

    def number_for(self, column: ColumnInfo, node: Tree) -> Any:
        if not column.numeric:
            raise InterpretError(
                f"Column {column.name!r} holds categories, not numbers: a comparison or range does not apply to it "
                f"(in {self.text!r}). Its values are: {_listing(column.values)}."
            )
        if node.data != "number_value":
            if column.kind == "datetime":
                return str(node.children[0]).strip("'\"") if node.data == "text_value" else _phrase_text(node.children[0])
            raise InterpretError(f"Column {column.name!r} is numeric: {_quote(self.text, node)!r} is not a number (in {self.text!r}).")
        return _plain(number_of(node.children[0]))

    def try_bare(self, text: str, negate: bool = False) -> tuple[ColumnInfo, Any] | None:
        """A phrase naming a value on its own: a category ("female"), a yes/no column ("fraudulent"), "non-smoker"."""
        words = text.split()
        if words and words[0].lower().startswith("non-") and len(words[0]) > 4:
            text, negate = " ".join([words[0][4:], *words[1:]]), not negate
        hits = []
        notes: list[str] = []
        for info in self.vocab.columns.values():
            if info.values and info.kind != "numeric":
                label = self.vocab.value(info, text, notes)
                if label is not _MISSING:
                    hits.append((info, label))
        if len(hits) > 1:
            raise InterpretError(
                f"{text!r} is a value of several columns ({', '.join(repr(h[0].name) for h in hits)}): "
                f"say which, e.g. '{hits[0][0].name} is {hits[0][1]}'."
            )
        if hits:
            self.notes.extend(notes)
            info, label = hits[0]
            return (info, _Excluded(label)) if negate else (info, label)
        info = self.vocab.column(text, notes)
        if info is not None and info.flag_values():
            self.notes.extend(notes)
            true, false = info.flag_values()
            return info, false if negate else true
        return None

    def bare_value(self, node: Tree, negate: bool = False) -> tuple[ColumnInfo, Any]:
        text = _phrase_text(node)
        hit = self.try_bare(text, negate) or self.value_and_column(text.split(), negate)
        if hit is None:
            raise self.unknown(text, "a value")
        return hit

    def value_and_column(self, words: list[str], negate: bool) -> tuple[ColumnInfo, Any] | None:
        """ "11th education", "education 11th": a value with its column's name before or after it."""
        for cut in range(1, len(words)):
            for col_words, value_words in ((words[cut:], words[:cut]), (words[:cut], words[cut:])):
                info = self.vocab.column(" ".join(col_words))
                if info is not None and info.values:
                    label = self.vocab.value(info, " ".join(value_words), self.notes)
                    if label is not _MISSING:
                        return (info, _Excluded(label)) if negate else (info, label)
        return None

    def unknown(self, text: str, where: str) -> InterpretError:
        values = [str(v) for info in self.vocab.columns.values() for v in info.values]
        flags = [c.name for c in self.vocab.columns.values() if c.flag_values()]
        hint = self.vocab.suggest(text, values + list(self.vocab.columns))
        return InterpretError(
            f"Cannot place the words {text!r} (in {self.text!r}) as {where}: they name no column value or yes/no column."
            f"{hint} The columns are: {self.vocab.known_columns()}"
            + (f"; yes/no columns: {', '.join(map(repr, flags))}" if flags else "") + "."
        )

    def bad_value(self, column: ColumnInfo, text: str) -> InterpretError:
        return InterpretError(
            f"{text!r} is not a value of column {column.name!r} (in {self.text!r})."
            f"{self.vocab.suggest(text, [str(v) for v in column.values])} Its values are: {_listing(column.values)}."
        )

    def set_condition(self, column: ColumnInfo, value: Any, where: str) -> None:
        if isinstance(value, _Excluded):
            self.exclude(column, [value.label], where)
            return
        self.put(column, value, where)

    def put(self, column: ColumnInfo, value: Any, where: Any) -> None:
        where = _quote(self.text, where) if isinstance(where, Tree) else where
        if column.name in self.conditions and self.conditions[column.name] != value:
            raise InterpretError(
                f"Column {column.name!r} is asked for twice ({self.conditions[column.name]!r} and, in {where!r}, {value!r}); "
                "give one condition per column, or a set ('is A or B')."
            )
        self.conditions[column.name] = value

    def exclude(self, column: ColumnInfo, labels: list[Any], where: Any) -> None:
        where = _quote(self.text, where) if isinstance(where, Tree) else where
        flags = column.flag_values()
        if flags and len(labels) == 1:  # "not fraudulent": the other value of a yes/no column
            self.put(column, flags[1] if labels[0] == flags[0] else flags[0], where)
            return
        if not column.values:
            raise InterpretError(f"Column {column.name!r} is numeric: 'not' applies to a comparison there, e.g. 'not over 40' ({where!r}).")
        previous = self.conditions.get(column.name)
        if isinstance(previous, dict) and "not_in" in previous:
            self.conditions[column.name] = {"not_in": _unique(previous["not_in"] + labels)}
        else:
            self.put(column, {"not_in": _unique(labels)}, where)

    def add_range(self, column: ColumnInfo, bounds: dict[str, Any], node: Tree) -> None:
        if not column.numeric:
            raise InterpretError(
                f"Column {column.name!r} holds categories: {_quote(self.text, node)!r} compares it with a number. "
                f"Its values are: {_listing(column.values)}."
            )
        previous = self.conditions.get(column.name)
        if previous is None:
            self.conditions[column.name] = bounds
        elif isinstance(previous, dict) and not ({"between", "in", "not_in"} & (set(previous) | set(bounds))) and not (set(previous) & set(bounds)):
            previous.update(bounds)  # "age over 30 and age under 50"
        else:
            self.put(column, bounds, node)

    def finish_mixture(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for name, shares in self.mixture.items():
            column = self.vocab.columns[name]
            if name in self.conditions:
                raise InterpretError(f"Column {name!r} has both a condition and a share in {self.text!r}; give one.")
            total = sum(shares.values())
            if total > 1 + 1e-9:
                raise InterpretError(f"The shares of {name!r} add up to {total:.0%}, more than all the rows ({self.text!r}).")
            rest = [v for v in column.values if v not in shares]
            if len(rest) == 1 and total < 1:  # a yes/no column: the other value takes the rest
                shares[rest[0]] = 1 - total
            out[name] = {str(k): round(v, 10) for k, v in shares.items()}
        return out


@dataclass(frozen=True)
class _Excluded:
    label: Any


def _unique(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _listing(values: list[Any], limit: int = 30) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "") if values else "(none known)"
