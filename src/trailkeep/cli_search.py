"""``trailkeep search``: query a running server's log from the terminal.

Registered by cli.py. A thin client of ``GET /v1/events?q=...``: the server parses and
checks the query (a newer server may know terms this client does not), the CLI shows
the answer as a table or as JSONL, and pages with the server's opaque cursors.

The HTTP plumbing (client, bounded reads, error text) is the log monitor's
(``trailkeep.integrity.monitor``), so both commands take the same options and fail
the same way. Its import is deferred to the call, like verify's, so that
``trailkeep --help`` and the other commands do not pay for it.

Exit status: 0 done (also when nothing matched), 1 could not search (network, HTTP
error, an answer that is not an event page), 2 usage error or a query the server
refuses (printed with a caret under the problem), 130 interrupted, 141 output closed.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_SERVER",
    "BadQuery",
    "Page",
    "SearchClient",
    "SearchError",
    "event_spans",
    "parse_page",
    "search",
]

DEFAULT_SERVER = "http://127.0.0.1:8000"
DEFAULT_LIMIT = 50
_MAX_PAGE_BYTES = 256 << 20  # 1,000 events of the largest configurable size fit easily

_err = Console(stderr=True, highlight=False, soft_wrap=True)


class SearchError(Exception):
    """The search could not be made or answered (HTTP error, malformed answer): exit 1."""


class BadQuery(Exception):
    """The server refused the query (400 bad_query): exit 2, with a caret if placed."""

    def __init__(self, message: str, position: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Page:
    """One page of ``GET /v1/events``: the events, each one's exact bytes, the cursor."""

    events: list[dict[str, Any]]
    raw: list[bytes]
    next_cursor: str | None


def _usage(message: str, hint: str) -> NoReturn:
    # typer.BadParameter is a usage error of typer's own (vendored) click: exit status 2.
    raise typer.BadParameter(message, param_hint=hint)


def _error(message: str, code: int = 1) -> typer.Exit:
    _err.print(Text.assemble(("error: ", "red"), message))
    return typer.Exit(code)


# ------------------------------------------------------------------ the answer


def event_spans(body: bytes) -> list[bytes]:
    """The exact bytes of each element of the ``data`` array of a (valid JSON) page.

    The server splices stored event bodies into its answer as they are; these are those
    bytes, so a JSONL line is the stored event, byte for byte, not a re-serialization.
    """
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    i = _skip_space(text, 0)
    _expect(text, i, "{")
    i = _skip_space(text, i + 1)
    spans: list[bytes] | None = None
    while i < len(text) and text[i] != "}":
        _expect(text, i, '"')
        key, i = decoder.raw_decode(text, i)
        i = _skip_space(text, i)
        _expect(text, i, ":")
        i = _skip_space(text, i + 1)
        if key == "data":
            spans, i = _array_spans(text, i, decoder)
        else:
            _, i = decoder.raw_decode(text, i)
        i = _skip_space(text, i)
        if i < len(text) and text[i] == ",":
            i = _skip_space(text, i + 1)
    if spans is None:
        raise ValueError("no data array")
    return spans


def _array_spans(text: str, i: int, decoder: json.JSONDecoder) -> tuple[list[bytes], int]:
    _expect(text, i, "[")
    spans: list[bytes] = []
    i = _skip_space(text, i + 1)
    while i < len(text) and text[i] != "]":
        _, end = decoder.raw_decode(text, i)
        spans.append(text[i:end].encode("utf-8"))
        i = _skip_space(text, end)
        if i < len(text) and text[i] == ",":
            i = _skip_space(text, i + 1)
    _expect(text, i, "]")
    return spans, i + 1


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t\n\r":
        i += 1
    return i


def _expect(text: str, i: int, char: str) -> None:
    if i >= len(text) or text[i] != char:
        raise ValueError(f"expected {char!r} at {i}")


def parse_page(body: bytes, url: str, *, spans: bool) -> Page:
    """A 200 answer as a :class:`Page`; SearchError if it is not an event page."""
    try:
        value = orjson.loads(body)  # strict: the span walk below may then trust the shape
    except orjson.JSONDecodeError:
        raise SearchError(f"{url}: the answer is not JSON") from None
    data = value.get("data") if isinstance(value, dict) else None
    cursor = value.get("next_cursor") if isinstance(value, dict) else None
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise SearchError(f'{url}: the answer has no "data" list of events')
    if cursor is not None and not isinstance(cursor, str):
        raise SearchError(f'{url}: the answer\'s "next_cursor" is not a string')
    raw: list[bytes] = []
    if spans:
        try:
            raw = event_spans(body)
        except ValueError:  # also UnicodeDecodeError
            raise SearchError(f"{url}: the answer's event list cannot be split") from None
        if len(raw) != len(data):
            raise SearchError(f"{url}: the answer's event list cannot be split")
        # A line of JSONL must be one line: an event the server sent with line breaks
        # between its tokens (not the case today) is written compact instead.
        pairs = zip(raw, data, strict=True)
        raw = [orjson.dumps(e) if b"\n" in r or b"\r" in r else r for r, e in pairs]
    return Page(data, raw, cursor or None)


def _bad_query(body: bytes) -> BadQuery | None:
    """The server's ``bad_query`` error, or None if the 400 is about something else."""
    try:
        error = orjson.loads(body).get("error", {})
        if error.get("code") != "bad_query":
            return None
        message = str(error.get("message") or "bad query")
        details = error.get("details")
        position = details.get("position") if isinstance(details, dict) else None
    except (orjson.JSONDecodeError, AttributeError):
        return None
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        return BadQuery(message, None)
    # Under a caret, "bad query: " and "(at character N)" only repeat what it shows.
    message = message.removeprefix("bad query: ").removesuffix(f" (at character {position})")
    return BadQuery(message, position)


class SearchClient:
    """``GET /v1/events`` on behalf of one tenant, page by page."""

    def __init__(
        self,
        server: str,
        *,
        api_key: str | None,
        tenant: str,
        timeout: float,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        from trailkeep.integrity.monitor import _http_client

        self.url = server.rstrip("/") + "/v1/events"
        self._tenant = tenant
        self._http = _http_client(api_key, timeout, transport)
        self._http.headers["User-Agent"] = "trailkeep-search"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SearchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def page(self, query: str, limit: int, cursor: str | None, *, spans: bool) -> Page:
        import httpx

        from trailkeep.integrity.monitor import MonitorError, _error_text, _get

        params: dict[str, Any] = {"tenant_id": self._tenant, "limit": limit}
        if query:
            params["q"] = query
        if cursor:
            params["cursor"] = cursor
        if spans:  # JSONL for `trailkeep verify`: the stored form, which the leaves hash
            params["form"] = "stored"
        try:
            status, body = _get(self._http, self.url, params, "application/json", _MAX_PAGE_BYTES)
        except MonitorError as exc:
            message = str(exc)
            if isinstance(exc.__context__, httpx.ConnectError):
                message += " (is the server running? set --server or TRAILKEEP_URL)"
            raise SearchError(message) from None
        if status == 400:
            refused = _bad_query(body)
            if refused is not None:
                raise refused
        if status != 200:
            raise SearchError(f"{self.url}: {_error_text(status, body)}")
        return parse_page(body, self.url, spans=spans)


# ------------------------------------------------------------------ the table

# Characters an event's text must not send to a terminal as they are: controls (an
# escape sequence in a message could rewrite the auditor's screen) and bidirectional
# overrides (they can make a line read differently from what it holds).
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _clean(value: Any) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char in "\t\n\r":
            out.append(" ")
        elif char in _BIDI or unicodedata.category(char) == "Cc":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def _actor(event: dict[str, Any]) -> str:
    actor = event.get("actor")
    if not isinstance(actor, dict):
        return ""
    return _clean(actor.get("id") or actor.get("name") or actor.get("type"))


def _targets(event: dict[str, Any]) -> str:
    targets = event.get("targets")
    if not isinstance(targets, list):
        return ""
    parts = [
        f"{_clean(t.get('type'))}:{_clean(t.get('id'))}" for t in targets if isinstance(t, dict)
    ]
    return ", ".join(parts)


_SEVERITY_STYLE = {
    "DEBUG": "dim",
    "NOTICE": "cyan",
    "WARNING": "yellow",
    "ERROR": "red",
    "CRITICAL": "bold red",
}

# (header, narrowest, widest, floor): a column is as wide as the first page needs,
# between narrowest and widest, and those widths are kept for the later pages, so that
# pages printed as they arrive line up. In a narrow terminal the columns with a floor
# give way, message first, down to their floor; the others are never cut.
_COLUMNS: tuple[tuple[str, int, int, int | None], ...] = (
    ("occurred_at", 11, 32, None),
    ("seq", 3, 12, None),
    ("severity", 8, 8, None),
    ("outcome", 7, 7, None),
    ("action", 16, 40, 12),
    ("actor", 12, 32, 8),
    ("targets", 16, 40, 8),
    ("message", 40, 60, 12),
)
_GIVE_WAY = (7, 6, 5, 4)  # message, targets, actor, action
_GAP = 2  # blanks between two columns
_RIGHT = 1  # seq, right-aligned


def _cells(event: dict[str, Any]) -> list[Text]:
    severity = _clean(event.get("severity"))
    outcome = _clean(event.get("outcome"))
    return [
        Text(_clean(event.get("occurred_at"))),
        Text(_clean(event.get("seq"))),
        Text(severity, style=_SEVERITY_STYLE.get(severity, "")),
        Text(outcome, style="red" if outcome == "failure" else ""),
        Text(_clean(event.get("action")), style="bold"),
        Text(_actor(event)),
        Text(_targets(event)),
        Text(_clean(event.get("message"))),
    ]


def _widths(rows: list[list[Text]], available: int) -> list[int]:
    widths = [
        max(low, min(high, max(row[n].cell_len for row in rows)))
        for n, (_, low, high, _) in enumerate(_COLUMNS)
    ]
    excess = sum(widths) + _GAP * (len(widths) - 1) - available
    for n in _GIVE_WAY:
        floor = _COLUMNS[n][3]
        assert floor is not None
        cut = max(0, min(excess, widths[n] - floor))
        widths[n] -= cut
        excess -= cut
    return widths


class TableWriter:
    """Prints pages as one table that lines up: a header, then the first page's widths.

    The rows are laid out here rather than by rich's Table, which takes about a
    millisecond a row: too slow for --all over many pages.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self.widths: list[int] = []
        self.rows = 0

    def write(self, page: Page) -> None:
        if not page.events:
            return
        rows = [_cells(event) for event in page.events]
        lines = []
        if not self.widths:
            self.widths = _widths(rows, self.console.width)
            lines.append(self._line([Text(header, style="bold") for header, *_ in _COLUMNS]))
            rule = sum(self.widths) + _GAP * (len(self.widths) - 1)
            lines.append(Text("\u2500" * rule, style="dim"))
        lines += [self._line(row) for row in rows]
        self.console.print(Text("\n").join(lines), no_wrap=True, overflow="ellipsis", crop=True)
        self.rows += len(rows)

    def _line(self, cells: list[Text]) -> Text:
        line = Text()
        last = len(cells) - 1
        for n, (cell, width) in enumerate(zip(cells, self.widths, strict=True)):
            cell.truncate(width, overflow="ellipsis")
            pad = " " * (width - cell.cell_len)
            if n == _RIGHT:
                line.append(pad)
            line.append_text(cell)
            if n != _RIGHT and n != last:  # no trailing blanks after the last column
                line.append(pad)
            if n != last:
                line.append(" " * _GAP)
        return line


class _TableConsole(Console):
    def on_broken_pipe(self) -> None:
        # rich exits 1 here; let search() end as it does for --json (| head: 141).
        self.quiet = True
        raise BrokenPipeError


def _table_console() -> Console:
    """The terminal's width; into a file or a pipe (without COLUMNS), whole rows."""
    console = _TableConsole(highlight=False)
    if console.is_terminal or "COLUMNS" in os.environ:
        return console
    return _TableConsole(highlight=False, width=1000)


# ------------------------------------------------------------------ the command


def _shell_words(query: str, tenant: str, cursor: str, options: list[str]) -> str:
    quoted = "'" + query.replace("'", "'\"'\"'") + "'"
    rest = " ".join(shlex.quote(option) for option in options)
    tail = f" {rest}" if rest else ""
    return (
        f"trailkeep search {quoted} --tenant {shlex.quote(tenant)}"
        f" --cursor {shlex.quote(cursor)}{tail}"
    )


def search(
    tenant: Annotated[str, typer.Option(show_default=False, help="Tenant id")],
    query: Annotated[
        str,
        typer.Argument(
            metavar="QUERY",
            show_default=False,
            help="The query, in one argument (quote it); empty: every event",
        ),
    ] = "",
    server: Annotated[
        str, typer.Option(envvar="TRAILKEEP_URL", help="Server base URL")
    ] = DEFAULT_SERVER,
    api_key: Annotated[
        str | None,
        typer.Option(envvar="TRAILKEEP_API_KEY", show_default=False, help="Bearer API key"),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=1000, help="Events per page (the server's page size)")
    ] = DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        typer.Option(show_default=False, help="Continue from a printed next cursor"),
    ] = None,
    all_pages: Annotated[
        bool, typer.Option("--all", help="Follow the cursor to the last page")
    ] = False,
    pages: Annotated[
        int | None,
        typer.Option(min=1, show_default=False, help="Follow at most this many pages (default 1)"),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print JSONL: each stored event on one line")
    ] = False,
    timeout: Annotated[float, typer.Option(min=0.1, help="HTTP timeout, seconds")] = 30.0,
) -> None:
    """Search a tenant's audit log on a running server, newest events first.

    trailkeep search 'action:user.* severity>=WARNING -actor.type:system' --tenant acme

    The query language is described in docs/query-language.md; the server checks the
    query and a refused one is printed with a caret under the problem. Results come a
    page at a time (--limit events, default 50): after the last page shown, the command
    to see the next one is printed to stderr. --pages K follows up to K pages, --all
    every page; each page is printed as it arrives.

    --json prints only JSONL on stdout, one event per line, the bytes the server stores
    (sealed personal fields as ciphertext: GET /v1/events/{id}?form=stored), which
    `trailkeep verify` checks. The table shows fields decrypted or masked for your role.

    Exit status: 0 done (also when nothing matched), 1 the search failed, 2 usage error
    or a query the server refused.
    """
    if not server.startswith(("http://", "https://")):
        _usage(f"{server!r} is not an http:// or https:// URL", "--server")
    if not api_key:
        _usage("an API key is required: pass --api-key or set TRAILKEEP_API_KEY", "--api-key")
    if query.startswith("--"):  # unknown options reach QUERY (see cli.py), never a query
        word = query.split()[0]
        _usage(f"{word!r} is not an option (and a query cannot start with '--')", "QUERY")
    if all_pages and pages is not None:
        _usage("give --all or --pages, not both", "--all, --pages")
    max_pages = None if all_pages else (pages or 1)
    try:
        with SearchClient(server, api_key=api_key, tenant=tenant, timeout=timeout) as client:
            next_cursor = _run(client, query, limit, cursor, max_pages, json_out)
    except BadQuery as exc:
        raise _refused(query, exc) from None
    except SearchError as exc:
        raise _error(str(exc)) from None
    except BrokenPipeError:
        # The reader went away (| head): stop quietly, as other tools do on SIGPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(141) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except Exception as exc:  # never a traceback: name the failure instead
        raise _error(f"unexpected {type(exc).__name__}: {exc}") from None
    if next_cursor is not None:
        options = [] if limit == DEFAULT_LIMIT else ["--limit", str(limit)]
        if server.rstrip("/") != DEFAULT_SERVER:
            options += ["--server", server]
        if json_out:
            options.append("--json")
        hint = _shell_words(query, tenant, next_cursor, options)
        _err.print(Text(f"more: {hint}", style="dim"))


def _run(
    client: SearchClient,
    query: str,
    limit: int,
    cursor: str | None,
    max_pages: int | None,
    json_out: bool,
) -> str | None:
    """Print pages from ``cursor`` on; the cursor to continue with, None at the end."""
    table = TableWriter(_table_console())
    shown = 0
    while True:
        page = client.page(query, limit, cursor, spans=json_out)
        shown += 1
        if json_out:
            sys.stdout.buffer.write(b"".join(line + b"\n" for line in page.raw))
            sys.stdout.buffer.flush()
        else:
            table.write(page)
        if page.next_cursor is not None and page.next_cursor == cursor:
            raise SearchError(f"{client.url}: the server answered with the cursor it was given")
        cursor = page.next_cursor
        if cursor is None or (max_pages is not None and shown >= max_pages):
            if not json_out and table.rows == 0:
                _err.print(Text("no events match", style="dim"))
            return cursor


def _refused(query: str, exc: BadQuery) -> typer.Exit:
    """The query with a caret under the problem, as QueryError.pointer draws it: exit 2."""
    from trailkeep.kit.query_ast import QueryError

    if exc.position is None or exc.position > len(query):
        return _error(f"bad query: {exc.message}", 2)
    line, caret = QueryError(exc.message, exc.position).pointer(query).split("\n", 1)
    _err.print(Text(line))
    _err.print(Text(caret, style="red"))
    return typer.Exit(2)
