"""retention/archive_query.py: the query language over archived Parquet segments."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trailkeep.exports.columns import view_values
from trailkeep.exports.writers import ParquetWriter
from trailkeep.kit.canonical import canonical_json
from trailkeep.kit.query_ast import Query
from trailkeep.query.parser import parse_query
from trailkeep.retention.archive_query import (
    ArchiveQueryError,
    archive_files,
    compile_duckdb,
    query_archive,
)

NOW_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def _event(tenant: str, seq: int, day: str, action: str, severity: str, **more: Any) -> Any:
    actor_id = more.pop("actor", "u_ada")
    doc: dict[str, Any] = {
        "seq": seq,
        "id": f"{tenant}-{seq}",
        "occurred_at": f"{day}T10:00:00.000000Z",
        "received_at": f"{day}T10:00:01.000000Z",
        "action": action,
        "severity": severity,
        "outcome": more.pop("outcome", "success"),
        "actor": {"id": actor_id, "type": "user", "name": actor_id[2:].title()},
        "targets": more.pop("targets", []),
        "context": {"ip_address": more.pop("ip", None), "request_id": f"req-{seq}"},
    }
    doc.update(more)
    return {k: v for k, v in doc.items() if v is not None}


def _doc(type_: str, id_: str, name: str | None = None) -> dict[str, str]:
    return {"type": type_, "id": id_} | ({"name": name} if name else {})


ACME_1 = [
    _event(
        "acme", 1, "2024-01-01", "user.login", "INFO",
        targets=[_doc("session", "s1")], message="Signed in", ip="10.0.0.5",
        metadata={"plan": "pro"},
    ),
    _event(
        "acme", 2, "2024-01-02", "user.logout", "INFO", actor="u_bob",
        message="Signed out", ip="10.0.1.7", metadata={"plan": "free"},
    ),
    _event(
        "acme", 3, "2024-01-03", "document.delete", "WARNING", outcome="failure",
        targets=[_doc("document", "d1", "Budget 2024")], message="Disk full while deleting",
        metadata={"plan": "pro", "region": {"code": "eu-1"}},
    ),
    _event(
        "acme", 4, "2024-01-04", "user.password.reset", "ERROR", actor="u_svc",
        targets=[_doc("user", "u_bob")], message="Reset failed", ip="192.168.1.1",
        metadata={"plan": 5},
    ),
    _event(
        "acme", 5, "2024-01-05", "document.view", "DEBUG", actor="u_bob",
        targets=[_doc("document", "d2", "Roadmap"), _doc("folder", "d1")],
    ),
]  # fmt: skip
ACME_2 = [
    _event(
        "acme", 6, "2024-02-01", "user.login", "CRITICAL", actor="u_eve", outcome="failure",
        targets=[_doc("session", "s9")], message="Brute force detected", ip="2001:db8::1",
        metadata={"plan": "pro"},
    ),
    _event(
        "acme", 7, "2024-02-02", "document.delete", "NOTICE",
        targets=[_doc("document", "d2")], message="Deleted roadmap",
        metadata={"region": {"code": "us-2"}},
    ),
    _event("acme", 8, "2024-02-03", "user.login", "WARNING", actor="u_bob",
           message="Signed in from new device"),
    _event("acme", 9, "2024-02-04", "export.create", "INFO", message="disk usage report",
           metadata={"note": "needs diskette"}),
]  # fmt: skip
GLOBEX = [
    _event("globex", 1, "2024-01-01", "user.login", "INFO", message="Signed in"),
    _event("globex", 2, "2024-01-03", "document.delete", "WARNING",
           targets=[_doc("document", "d1")], message="Disk full", metadata={"plan": "pro"}),
    _event("globex", 3, "2024-02-01", "user.login", "CRITICAL", ip="10.0.0.5"),
    _event("globex", 10, "2024-02-05", "user.logout", "INFO"),
]  # fmt: skip


def _write(path: Path, docs: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True)
    with path.open("wb") as sink:
        writer = ParquetWriter(sink, row_group=2)
        writer.write([canonical_json(d) for d in docs], [view_values(d) for d in docs])
        writer.close()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    _write(tmp_path / "acme" / "seg-0001" / "events.parquet", ACME_1)
    _write(tmp_path / "acme" / "seg-0002" / "events.parquet", ACME_2)
    _write(tmp_path / "globex" / "seg-0001" / "events.parquet", GLOBEX)
    (tmp_path / "acme" / "seg-0001" / "manifest.json").write_text("{}")
    return tmp_path


def _ids(root: Path, text: str, tenant: str | None = "acme", limit: int = 100) -> list[str]:
    events = query_archive(archive_files(root, tenant), text, limit=limit, now_us=NOW_US)
    return [e["id"] for e in events]


def _seqs(root: Path, text: str, limit: int = 100) -> list[int]:
    ids = _ids(root, text, limit=limit)
    assert all(i.startswith("acme-") for i in ids)
    return [int(i.split("-")[1]) for i in ids]


def test_archive_files(root: Path) -> None:
    acme = archive_files(root, "acme")
    assert acme == [
        root / "acme" / "seg-0001" / "events.parquet",
        root / "acme" / "seg-0002" / "events.parquet",
    ]
    assert archive_files(root, None) == [*acme, root / "globex" / "seg-0001" / "events.parquet"]
    assert archive_files(root, "initech") == []
    with pytest.raises(ArchiveQueryError):
        archive_files(root, "../acme")


def test_results_are_stored_events(root: Path) -> None:
    [event] = query_archive(archive_files(root, "acme"), "request_id:req-3", limit=5, now_us=NOW_US)
    assert event == ACME_1[2]


@pytest.mark.parametrize(
    ("text", "seqs"),
    [
        ("action:user.login", [8, 6, 1]),
        ("action:user.*", [8, 6, 4, 2, 1]),
        ("action:user.login,document.*", [8, 7, 6, 5, 3, 1]),
        ("-action:user.*", [9, 7, 5, 3]),
        ("actor.id:u_bob", [8, 5, 2]),
        ("actor.name:Bo*", [8, 5, 2]),
        ("outcome:failure", [6, 3]),
        ("-outcome:success", [6, 3]),
        ("severity>=WARNING", [8, 6, 4, 3]),
        ("-severity:INFO,DEBUG", [8, 7, 6, 4, 3]),
        ("target.type:document", [7, 5, 3]),
        ("target.type:document target.id:d1", [3]),  # one and the same target
        ("target.id:d*", [7, 5, 3]),
        ("-target.type:document", [9, 8, 6, 4, 2, 1]),
        ("metadata.plan:pro", [6, 3, 1]),  # 4's plan is a number: never a match
        ("-metadata.plan:pro", [9, 8, 7, 5, 4, 2]),  # no metadata: negated matches
        ("metadata.region.code:eu*", [3]),
        ("occurred:2024-01-02..2024-01-04", [3, 2]),  # half-open
        ("occurred>=2024-02-01", [9, 8, 7, 6]),
        ("-occurred<2024-02-01", [9, 8, 7, 6]),
        ("occurred:2024-01-05", [5]),
        ("ip:10.0.0.5", [1]),
        ("ip:10.0.0.0/16", [2, 1]),
        ("ip:2001:db8::1", [6]),
        ("-ip:10.0.0.0/8", [9, 8, 7, 6, 5, 4, 3]),
    ],
)
def test_field_terms(root: Path, text: str, seqs: list[int]) -> None:
    assert _seqs(root, text) == seqs


@pytest.mark.parametrize(
    ("text", "seqs"),
    [
        ("disk", [9, 3]),  # a substring: "diskette" too
        ("DISK*", [9, 3]),
        ('"disk full"', [3]),
        ("budget", [3]),  # a target name
        ("eve", [6]),  # the actor name
        ("diskette", [9]),  # a metadata value
        ("login", []),  # the action is not full text
        ("-disk", [8, 7, 6, 5, 4, 2, 1]),
        ('"full signed"', []),
    ],
)
def test_free_text(root: Path, text: str, seqs: list[int]) -> None:
    assert _seqs(root, text) == seqs


def test_combination(root: Path) -> None:
    assert _seqs(root, "action:user.* severity>=WARNING -outcome:failure") == [8, 4]
    assert _seqs(root, "signed occurred<2024-02-01 actor.id:u_ada") == [1]


def test_limit_and_order(root: Path) -> None:
    assert _seqs(root, "") == [9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert _seqs(root, "", limit=3) == [9, 8, 7]
    assert _seqs(root, "severity>=WARNING", limit=2) == [8, 6]
    assert _seqs(root, "", limit=0) == []


def test_tenant_filter(root: Path) -> None:
    assert _ids(root, "disk") == ["acme-9", "acme-3"]
    assert _ids(root, "disk", tenant="globex") == ["globex-2"]
    assert _ids(root, "target.id:d1", tenant=None) == ["acme-5", "acme-3", "globex-2"]
    assert _ids(root, "", tenant=None, limit=3) == ["globex-10", "acme-9", "acme-8"]


def test_a_segment_archived_twice_answers_once(root: Path) -> None:
    """An interrupted run's stored-but-unrecorded copy of a segment: one row per seq."""
    _write(root / "acme" / "seg-0003" / "events.parquet", ACME_2)
    assert _seqs(root, "") == [9, 8, 7, 6, 5, 4, 3, 2, 1]
    assert _ids(root, "", tenant=None, limit=3) == ["globex-10", "acme-9", "acme-8"]


def test_no_files(root: Path) -> None:
    assert query_archive([], "action:user.login", limit=10, now_us=NOW_US) == []
    with pytest.raises(ArchiveQueryError):  # the query is still checked
        query_archive([], "bogus:1", limit=10, now_us=NOW_US)


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("action:user.login bogus:1", 18, "unknown field 'bogus'"),
        ("severity>=LOUD", 10, "unknown severity"),
        ('"disk full', 0, ""),
    ],
)
def test_bad_query(root: Path, text: str, position: int, words: str) -> None:
    with pytest.raises(ArchiveQueryError) as caught:
        query_archive(archive_files(root, "acme"), text, limit=5, now_us=NOW_US)
    assert isinstance(caught.value, ValueError)
    assert caught.value.position == position
    assert f"position {position}" in str(caught.value)
    assert words in str(caught.value)


@dataclass(frozen=True)
class _Fancy:
    text: str


def test_unsupported_terms(root: Path) -> None:
    with pytest.raises(ArchiveQueryError, match="_Fancy terms are not supported"):
        compile_duckdb(Query((_Fancy("x"),)))  # type: ignore[arg-type]
    with pytest.raises(ArchiveQueryError, match="IPv6 CIDR ranges are not supported"):
        query_archive(archive_files(root, "acme"), "ip:2001:db8::/32", limit=5, now_us=NOW_US)


def test_values_are_parameters() -> None:
    sql, args = compile_duckdb(parse_query('actor.name:"O\'Brien" metadata.k:x*', now_us=NOW_US))
    assert "O'Brien" not in sql
    assert args == ["O'Brien", '$."k"', '$."k"', "x"]


def test_unreadable_file(tmp_path: Path) -> None:
    bad = tmp_path / "t" / "s" / "events.parquet"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not parquet")
    with pytest.raises(ArchiveQueryError, match="cannot read the archive"):
        query_archive([bad], "", limit=5, now_us=NOW_US)
    with pytest.raises(ArchiveQueryError, match="cannot read the archive"):
        query_archive([tmp_path / "missing.parquet"], "", limit=5, now_us=NOW_US)
