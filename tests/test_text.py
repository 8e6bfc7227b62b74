"""Text helpers: NFC, diacritics-free keys, and spreadsheet-safe CSV cells everywhere."""

from __future__ import annotations

import csv
import io
import unicodedata

from diemcau.actors import Actor
from diemcau.audit import AuditQuery, audit_csv, record_audit
from diemcau.store import Database
from diemcau.text import fold, nfc, spreadsheet_row, spreadsheet_safe


def test_fold_and_nfc() -> None:
    assert fold("Phường Bến Nghé") == "phuong ben nghe"
    assert fold("  ĐỒNG   Tháp ") == "dong thap"
    decomposed = unicodedata.normalize("NFD", "Xã Đắk Mil")
    assert nfc(decomposed) == "Xã Đắk Mil" and nfc(decomposed) != decomposed


def test_spreadsheet_safe_neutralises_formulas_only() -> None:
    for bad in ("=cmd|' /C calc'!A0", "+1", "-2+3", "@SUM(A1)", "\t=x", "\r=x"):
        assert spreadsheet_safe(bad) == "'" + bad
    for fine in ("Phường 1", "", "a=b", "100"):
        assert spreadsheet_safe(fine) == fine
    assert spreadsheet_row([1, "=x", None, "ok"]) == [1, "'=x", None, "ok"]


async def test_audit_export_neutralises_formulas(db: Database) -> None:
    async with db.session() as s:
        await record_audit(s, Actor.system(), "floor.grant", target='=HYPERLINK("http://x")')
    rows = list(csv.reader(io.StringIO(await audit_csv(db, AuditQuery()))))
    assert rows[1][6] == '\'=HYPERLINK("http://x")'
