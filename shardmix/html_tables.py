"""Tables as small self-contained HTML pages, so Snakemake's report shows them as tables."""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from shardmix import atomic

STYLE = ("body{font-family:sans-serif;font-size:13px;margin:12px}"
         "table{border-collapse:collapse;margin-bottom:18px}"
         "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}"
         "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}"
         "td.best{font-weight:bold;background:#e3f3e3}")


def write(path: str, sections: list[tuple[str, str, pd.DataFrame | str]], seal: bool = False) -> None:
    """`sections`: (heading, note, table) in order; a table given as a string is HTML already."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>"]
    for heading, note, table in sections:
        parts.append(f"<h3>{html.escape(heading)}</h3><p>{html.escape(note)}</p>")
        parts.append(table if isinstance(table, str) else
                     table.to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0))
    parts.append("</body></html>")
    atomic.write_text(path, "\n".join(parts), seal=seal)


def marked(frame: pd.DataFrame, label: str, shorten, values: list[str]) -> str:
    """`frame` as an HTML table whose `label` column is shortened by `shorten` (the whole value
    on hover) and whose lowest value per column of `values` is marked (class best, bold)."""
    best = {c: frame[c].min(skipna=True) for c in values}
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, r in frame.iterrows():
        cells = []
        for c in frame.columns:
            v = r[c]
            if c == label:
                full = str(v)
                cells.append(f"<td title='{html.escape(full, quote=True)}'>{html.escape(shorten(full))}</td>")
            elif c in values:
                is_best = isinstance(v, float) and not np.isnan(v) and v == best[c]
                text = "" if isinstance(v, float) and np.isnan(v) else f"{v:.4g}"
                cells.append(f"<td class='best' title='best in this column'>{text}</td>" if is_best else f"<td>{text}</td>")
            else:
                cells.append(f"<td>{html.escape(str(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
