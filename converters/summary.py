"""Printing what a conversion rewrote and what it left (and why)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table


def _ops(indices) -> str:
    idx = list(indices)
    return f"{idx[0]}-{idx[-1]}" if len(idx) > 2 and idx == list(range(idx[0], idx[-1] + 1)) \
        else ",".join(map(str, idx))


def format_conversion(result) -> str:
    console = Console(width=120, record=True, force_terminal=False, file=io.StringIO())
    for note in getattr(result, "notes", []):
        console.print(note)
    t = Table(title="rewritten", title_justify="left")
    for col in ("kind", "old ops", "new ops", "verified", "alone vs stock (LSB)",
                "in the model vs stock (LSB)"):
        t.add_column(col)
    for g in result.rewritten:
        alone = ", ".join(f"{v}" for v in (g.isolated_lsb or {}).values()) or "-"
        t.add_row(g.kind, _ops(g.replaced), ", ".join(o.custom_code for o in g.new_ops),
                  g.verified, alone, "-" if g.stock_max_lsb is None else str(g.stock_max_lsb))
    console.print(t)
    left = Table(title="left as they are", title_justify="left")
    for col in ("ops", "names", "why"):
        left.add_column(col)
    for item in result.left:
        left.add_row(_ops(item.ops), ", ".join(sorted(set(item.names))), item.reason)
    console.print(left)
    counts = ", ".join(f"{k} x{v}" for k, v in sorted(result.op_counts().items()))
    line = f"new ops: {counts}"
    if result.top1_agreement_with_stock is not None:
        line += (f"\ntop-1 agreement with the stock model on {result.samples} verification "
                 f"inputs: {result.top1_agreement_with_stock:.2f}")
    console.print(line)
    if result.samples:
        console.print("alone vs stock: each op fed the stock model's own values at its inputs "
                      "(bounds per op in converters/verify.py); in the model: at the rewrite's "
                      "output, with the differences of every op before it")
    return console.export_text()
