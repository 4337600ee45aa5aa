"""ADQL 2.1 parsing with lark (LALR(1), grammar in ``grammar.lark``) plus size and nesting limits."""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from .errors import AdqlError, AdqlSyntaxError

#: Longest accepted query, in UTF-8 bytes.
MAX_QUERY_BYTES = 100_000
#: Deepest accepted parenthesis nesting.
MAX_PAREN_DEPTH = 100
#: Deepest accepted parse tree; keeps the recursive translator well inside Python's recursion limit.
MAX_TREE_DEPTH = 250

_GRAMMAR = Path(__file__).with_name("grammar.lark")

# Terminal names as users know them, for error messages.
_PRETTY = {
    "REGULAR_ID": "identifier",
    "DELIMITED_ID": "quoted identifier",
    "UNUM": "number",
    "HEX": "hex number",
    "STRING": "string",
    "COMP_OP": "comparison operator",
    "OTHER_OP": "operator",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "DOT": "'.'",
    "STAR": "'*'",
    "SLASH": "'/'",
    "PLUS": "'+'",
    "MINUS": "'-'",
    "TILDE": "'~'",
    "_SEMI": "';'",
    "$END": "end of query",
    "<END-OF-FILE>": "end of query",
}


@functools.cache
def _parser() -> Lark:
    # Built once per process; a Lark LALR parser keeps no state between parses, so threads may share it.
    # The basic lexer keeps keywords reserved (a contextual lexer would read "SELECT FROM t" as a column "FROM").
    return Lark(_GRAMMAR.read_text(), parser="lalr", lexer="basic", maybe_placeholders=False)


def warm_up() -> None:
    """Build the parser now (about a second), so that the first query a server answers does not wait for it."""
    _parser()


def _pretty(name: str) -> str:
    if name in _PRETTY:
        return _PRETTY[name]
    return name.lstrip("_")


def _expected(err: UnexpectedInput) -> str:
    names = sorted({_pretty(n) for n in (getattr(err, "expected", None) or getattr(err, "allowed", None) or ())})
    if not names:
        return ""
    if len(names) > 10:
        names = names[:10] + ["..."]
    return f"; expected {', '.join(names)}"


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _syntax_error(err: UnexpectedInput, text: str) -> AdqlSyntaxError:
    if isinstance(err, UnexpectedToken) and err.token.type == "$END" or isinstance(err, UnexpectedEOF):
        line, column = _end_position(text)
        return AdqlSyntaxError(
            f"syntax error at line {line}, column {column}: unexpected end of query{_expected(err)}", line, column
        )
    if isinstance(err, UnexpectedToken):
        line, column = err.line, err.column
        what = str(err.token)
        if len(what) > 40:
            what = what[:37] + "..."
        msg = f"syntax error at line {line}, column {column}: unexpected {what!r}{_expected(err)}"
        if err.token.type == "_SEMI" or text[: err.token.start_pos].rstrip().endswith(";"):
            msg = f"syntax error at line {line}, column {column}: only a single statement is allowed"
        return AdqlSyntaxError(msg, line, column)
    if isinstance(err, UnexpectedCharacters):
        pos = err.pos_in_stream if err.pos_in_stream is not None else -1
        char = text[pos] if 0 <= pos < len(text) else "?"
        return AdqlSyntaxError(
            f"syntax error at line {err.line}, column {err.column}: unexpected character {char!r}", err.line, err.column
        )
    return AdqlSyntaxError(f"syntax error: {err}", getattr(err, "line", None), getattr(err, "column", None))


def _check_paren_depth(text: str) -> None:
    # A character scan (quotes and -- comments respected) before parsing: it keeps absurd nesting away from the
    # parser and costs microseconds; the grammar still decides what is valid.
    depth = 0
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"":
            close = text.find(ch, i + 1)
            while close != -1 and text.startswith(ch, close + 1):  # doubled quote is an escaped quote
                close = text.find(ch, close + 2)
            i = n if close == -1 else close + 1
            continue
        if ch == "-" and text.startswith("--", i):
            nl = text.find("\n", i)
            i = n if nl == -1 else nl + 1
            continue
        if ch == "(":
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                line = text.count("\n", 0, i) + 1
                column = i - (text.rfind("\n", 0, i) + 1) + 1
                raise AdqlError(
                    f"query nesting is too deep (more than {MAX_PAREN_DEPTH} levels of parentheses, "
                    f"line {line}, column {column})"
                )
        elif ch == ")":
            depth -= 1
        i += 1


def tree_depth(tree: Tree) -> int:
    """Depth of a parse tree, computed without recursion."""
    deepest = 0
    stack: list[tuple[Tree, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
    return deepest


def parse(query: str) -> Tree:
    """Parse an ADQL query.

    Parameters
    ----------
    query
        ADQL text; one statement, optionally followed by a single ``;``.

    Returns
    -------
    lark.Tree
        Parse tree rooted at ``start`` (rule names as in ``grammar.lark``).

    Raises
    ------
    AdqlSyntaxError
        The text is not ADQL; ``line`` and ``column`` (1-based) locate the problem.
    AdqlError
        The query is longer than `MAX_QUERY_BYTES` or nested deeper than the limits.
    """
    if not isinstance(query, str):
        raise AdqlError("the query must be a string")
    if len(query) > MAX_QUERY_BYTES or len(query.encode("utf-8", "surrogatepass")) > MAX_QUERY_BYTES:
        raise AdqlError(f"query is too long (more than {MAX_QUERY_BYTES} bytes)")
    if "\x00" in query:
        raise AdqlSyntaxError("syntax error: the query contains a NUL character", None, None)
    if not query.strip():
        raise AdqlSyntaxError("syntax error at line 1, column 1: empty query", 1, 1)
    try:
        # Counting parentheses on the token stream first keeps absurd nesting away from everything else.
        _check_paren_depth(query)
        tree = _parser().parse(query)
    except UnexpectedInput as err:
        raise _syntax_error(err, query) from None
    if tree_depth(tree) > MAX_TREE_DEPTH:
        raise AdqlError(f"query nesting is too deep (parse tree deeper than {MAX_TREE_DEPTH} levels)")
    return tree


def token_text(token: Token) -> str:
    """The source text of a token."""
    return str(token)
