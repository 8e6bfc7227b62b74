"""An indicator schema as a table: one row per indicator with its type, bounds, options,
unit and alert thresholds (the administration page's view of a form, exported).
"""

from __future__ import annotations

from diemcau.command.exports import Table
from diemcau.command.schemas import IndicatorSchema

__all__ = ["indicators_table"]

_COLS = [
    ("key", "Mã"),
    ("label_vi", "Tên"),
    ("label_en", "Tên (tiếng Anh)"),
    ("type", "Kiểu"),
    ("required", "Bắt buộc"),
    ("unit_vi", "Đơn vị"),
    ("min", "Nhỏ nhất"),
    ("max", "Lớn nhất"),
    ("choices", "Lựa chọn"),
    ("alert_above", "Cảnh báo khi vượt"),
    ("alert_rise_pct", "Cảnh báo khi tăng (%)"),
]


def indicators_table(schema: IndicatorSchema) -> Table:
    """One row per indicator; choices read "green=Cấp 1 – Xanh; yellow=…"."""
    table = Table.of(_COLS)
    for ind in schema.indicators:
        choices = "; ".join(f"{c.key}={c.label_vi}" for c in ind.choices)
        table.rows.append(
            [
                ind.key,
                ind.label_vi,
                ind.label_en,
                ind.type,
                ind.required,
                ind.unit_vi,
                ind.min,
                ind.max,
                choices,
                ind.alert_above,
                ind.alert_rise_pct,
            ]
        )
    return table
