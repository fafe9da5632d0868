"""Tables as small self-contained HTML pages, so Snakemake's report shows them as tables."""

from __future__ import annotations

import html

import pandas as pd

STYLE = ("body{font-family:sans-serif;font-size:13px;margin:12px}"
         "table{border-collapse:collapse;margin-bottom:18px}"
         "th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}"
         "th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}")


def write(path: str, sections: list[tuple[str, str, pd.DataFrame]]) -> None:
    """`sections`: (heading, note, table) in order."""
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><style>{STYLE}</style></head><body>"]
    for heading, note, table in sections:
        parts.append(f"<h3>{html.escape(heading)}</h3><p>{html.escape(note)}</p>")
        parts.append(table.to_html(index=False, float_format=lambda x: f"{x:.4g}", border=0))
    parts.append("</body></html>")
    with open(path, "w") as f:
        f.write("\n".join(parts))
