"""SQL text for the batch's statements, and overlapping Python work with MySQL's.

Values are rendered into the statement here (the driver's own escaping, applied per column)
instead of through aiomysql's argument handling, whose per-value dispatch was the largest
Python cost of a batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date
from typing import Any

import aiomysql
from pymysql.constants import SERVER_STATUS

#: What pymysql's escape_string replaces (its own table), for str.translate.
_ESCAPE_TABLE = {
    ord(char): escaped
    for char, escaped in (
        ("\0", "\\0"),
        ("\\", "\\\\"),
        ("\n", "\\n"),
        ("\r", "\\r"),
        ("\032", "\\Z"),
        ('"', '\\"'),
        ("'", "\\'"),
    )
}
#: Rows per INSERT statement: ~300 KB for ledger rows, far below max_allowed_packet.
_ROWS_PER_STATEMENT = 1000

#: Joins a column's strings for one escaping pass; the escaping leaves it alone.
_SEPARATOR = "\x01"
_NONE = type(None)


def render_rows(cursor: aiomysql.Cursor, rows: Sequence[Sequence[object]]) -> str:
    """`(v, v), (v, v)`: rows as SQL tuples (str, int, date or None), for VALUES and IN lists.

    Escaping is the driver's own (its table, or quote doubling when the server runs with
    NO_BACKSLASH_ESCAPES). Rendered column by column, each string column escaped in one pass
    over its values joined together, then each row by one `%` of a row template that holds
    the quotes of the columns without NULLs: per-value Python work (aiomysql's generic
    dispatch at first, then loops of ours) was the largest Python cost of handle().
    """
    if not rows:
        return ""
    if cursor.connection.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
        escape: Callable[[str], str] = _double_quotes
    else:
        escape = _backslash_escapes
    columns = [_render_column(escape, column) for column in zip(*rows, strict=True)]
    template = "(" + ", ".join([slot for slot, _ in columns]) + ")"
    return ", ".join(map(template.__mod__, zip(*[texts for _, texts in columns], strict=True)))


def _render_column(
    escape: Callable[[str], str], column: Sequence[object]
) -> tuple[str, Sequence[str]]:
    """The column's slot in the row template (`'%s'` when the template quotes its values) and
    its values' texts."""
    kinds = set(map(type, column))
    nulls = _NONE in kinds
    kinds.discard(_NONE)
    if not kinds:
        return "%s", ["NULL"] * len(column)
    if kinds == {int}:
        if not nulls:
            return "%s", list(map(str, column))
        return "%s", [str(value) if value is not None else "NULL" for value in column]
    if not all(issubclass(kind, str) for kind in kinds):
        return "%s", [_literal(escape, value) for value in column]
    # A StrEnum's text is its value (str.__str__), not its str().
    if nulls:
        texts = [str.__str__(value) for value in column if value is not None]
    else:
        texts = list(map(str.__str__, column))
    joined = _SEPARATOR.join(texts)
    if joined.count(_SEPARATOR) == len(texts) - 1:
        escaped = escape(joined).split(_SEPARATOR)
    else:  # a value holds the separator itself: one by one
        escaped = [escape(text) for text in texts]
    if not nulls:
        return "'%s'", escaped
    each = iter(escaped)
    return "%s", ["NULL" if value is None else "'" + next(each) + "'" for value in column]


def _literal(escape: Callable[[str], str], value: object) -> str:
    if isinstance(value, str):  # a StrEnum (AssetKind) too: its value, not its repr
        return "'" + escape(str.__str__(value)) + "'"
    if type(value) is int:
        return str(value)
    if value is None:
        return "NULL"
    if type(value) is date:
        return "'" + value.isoformat() + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def _backslash_escapes(text: str) -> str:
    return text.translate(_ESCAPE_TABLE)


def _double_quotes(text: str) -> str:
    return text.replace("'", "''")


def render_statements(
    cursor: aiomysql.Cursor,
    head: str,
    rows: Sequence[Sequence[object]],
    tail: str = "",
    *,
    per_statement: int = _ROWS_PER_STATEMENT,
) -> list[str]:
    """`head VALUES (...), (...) tail`, up to `per_statement` rows per statement; none for
    no rows."""
    return [
        f"{head} VALUES {render_rows(cursor, rows[start : start + per_statement])}{tail}"
        for start in range(0, len(rows), per_statement)
    ]


async def insert_rows(
    cursor: aiomysql.Cursor,
    head: str,
    rows: Sequence[Sequence[object]],
    tail: str = "",
    *,
    per_statement: int = _ROWS_PER_STATEMENT,
) -> None:
    """Render and execute `head VALUES (...), (...) tail` (see render_statements)."""
    await execute_all(
        cursor, render_statements(cursor, head, rows, tail, per_statement=per_statement)
    )


async def execute_all(cursor: aiomysql.Cursor, statements: Sequence[str]) -> None:
    for statement in statements:
        await cursor.execute(statement)


async def fetch_together(
    cursor: aiomysql.Cursor, statements: Sequence[str]
) -> list[tuple[tuple[Any, ...], ...]]:
    """The rows of each of `statements`, run in order in one round trip (the connection's
    multi-statements): several locking reads of a batch cost one wait, not one each. Errors
    as for execute_together, which is this without the rows."""
    if not statements:
        return []
    await cursor.execute(";\n".join(statements))
    results = [await cursor.fetchall()]
    while await cursor.nextset():
        results.append(await cursor.fetchall())
    return results


async def execute_together(cursor: aiomysql.Cursor, statements: Sequence[str]) -> None:
    """Run `statements` in order in one round trip (the connection's multi-statements).

    MySQL stops at the first statement that fails and sends its error; it is raised here, as
    one statement's would be, and the statements after it were not run. Every result is read,
    so the connection is ready for the next query. On a busy host each round trip is two
    wake-ups (MySQL's thread, then ours), each waiting for a core.
    """
    await fetch_together(cursor, statements)  # the results of writes hold no rows


@contextlib.asynccontextmanager
async def while_in_flight(
    statement: asyncio.Future[Any], cursor: aiomysql.Cursor
) -> AsyncIterator[None]:
    """Run the block while `statement` (queries on `cursor`) is on its way to MySQL and back:
    Python work of the batch overlaps MySQL's. The block must not touch the connection.

    If the block fails, the statement is still awaited before the error goes on, so that the
    caller's rollback finds the connection idle; if we are cancelled meanwhile, the
    connection is closed instead (the server then drops the transaction).
    """
    await asyncio.sleep(0)  # the statement's task runs until it waits for MySQL's answer
    try:
        yield
    except BaseException:
        if not statement.done():
            try:
                await asyncio.wait({statement})
            except asyncio.CancelledError:
                statement.cancel()
                cursor.connection.close()
                raise
        if not statement.cancelled():
            statement.exception()  # retrieved: the block's own error is the one to report
        raise
