"""Server-rendered HTML: one layout, plain forms, no script and no build step.

Every value from the database goes through `esc`; the Content-Security-Policy set by the app
forbids scripts altogether, so a hostile step output cannot run code in the page.
"""

from __future__ import annotations

import html
from urllib.parse import quote, urlencode

__all__ = [
    "STYLE",
    "api_url",
    "badge",
    "esc",
    "hidden",
    "layout",
    "link",
    "post_button",
    "pre_json",
    "wf_url",
]

MAX_PRE_CHARS = 20_000

STYLE = """
:root { --fg:#1d2330; --muted:#667085; --line:#e4e7ec; --bg:#f8f9fb; --accent:#3557d4; --err:#b42318;
        --err-bg:#fef3f2; --ok:#067647; --warn:#b54708; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif; color:var(--fg);
  background:var(--bg); }
header { background:#101828; color:#fff; padding:10px 24px; display:flex; gap:24px; align-items:center; }
header a { color:#d0d5dd; text-decoration:none; font-weight:500; } header a:hover { color:#fff; }
header .brand { color:#fff; font-weight:700; letter-spacing:.02em; }
main { padding:20px 24px; max-width:1280px; margin:0 auto; }
h1, h1.mono { font-size:20px; margin:0 0 12px; } .crumbs { font-size:13px; margin:0 0 4px; }
h2 { font-size:16px; margin:24px 0 8px; }
a { color:var(--accent); }
.muted { color:var(--muted); }
.mono, pre, code { font-family:ui-monospace,SFMono-Regular,Menlo,monospace; font-size:12.5px; }
table { border-collapse:collapse; width:100%; background:#fff; border:1px solid var(--line);
  border-radius:8px; }
th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:#f2f4f7; font-weight:600; font-size:12px; text-transform:uppercase; color:#475467; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; }
.s-SUCCESS, .s-OK { background:#ecfdf3; color:var(--ok); }
.s-ERROR, .s-RETRIES_EXCEEDED { background:var(--err-bg); color:var(--err); }
.s-PENDING { background:#fffaeb; color:var(--warn); } .s-ENQUEUED { background:#eff8ff; color:#175cd3; }
.s-CANCELLED { background:#f4f3ff; color:#5925dc; }
form.inline { display:inline; margin:0; }
button { font:inherit; padding:5px 12px; border-radius:6px; border:1px solid #d0d5dd; background:#fff;
  cursor:pointer; }
button:hover { background:#f2f4f7; }
button.primary { background:var(--accent); border-color:var(--accent); color:#fff; }
button.danger { color:var(--err); border-color:#fda29b; }
.filters { display:flex; gap:8px; flex-wrap:wrap; align-items:end; margin:12px 0; }
.filters label { display:flex; flex-direction:column; font-size:12px; color:var(--muted); gap:2px; }
input, select, textarea { font:inherit; padding:5px 8px; border:1px solid #d0d5dd; border-radius:6px;
  background:#fff; }
.meta { display:grid; grid-template-columns:max-content 1fr; gap:4px 16px; background:#fff;
  border:1px solid var(--line);
        border-radius:8px; padding:12px 16px; }
.meta dt { color:var(--muted); } .meta dd { margin:0; }
.actions { display:flex; gap:8px; margin:12px 0; }
pre { background:#f9fafb; border:1px solid var(--line); border-radius:6px; padding:8px 10px;
  margin:6px 0 0;
      max-height:320px; overflow:auto; white-space:pre-wrap; word-break:break-word; }
pre.error { background:var(--err-bg); border-color:#fecdca; color:#7a271a; }
.timeline { list-style:none; margin:0; padding:0 0 0 18px; border-left:2px solid var(--line); }
.timeline li { position:relative; margin:0 0 12px; background:#fff; border:1px solid var(--line);
  border-radius:8px; padding:10px 14px; }
.timeline li::before { content:""; position:absolute; left:-26px; top:14px; width:12px; height:12px;
  border-radius:50%;
                       background:var(--ok); border:2px solid #fff; box-shadow:0 0 0 1px var(--line); }
.timeline li.failed { border-color:#fda29b; } .timeline li.failed::before { background:var(--err); }
.step-head { display:flex; gap:12px; align-items:center; flex-wrap:wrap; }
.step-head .name { font-weight:600; }
.step-head .right { margin-left:auto; display:flex; gap:12px; align-items:center; }
.notice { padding:8px 12px; border-radius:6px; margin:8px 0; background:#ecfdf3; color:var(--ok);
  border:1px solid #abefc6; }
.notice.bad { background:var(--err-bg); color:var(--err); border-color:#fecdca; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 16px;
  margin:0 0 12px; }
textarea { width:100%; min-height:70px; }
th.num, td.num { text-align:right; white-space:nowrap; font-variant-numeric:tabular-nums; }
.s-BUDGET { background:#fffaeb; color:var(--warn); }
.card.budget { border-color:#fedf89; }
.card.budget input { width:150px; }
ul.models { margin:4px 0 0; padding-left:18px; }
.chart { display:flex; align-items:stretch; gap:3px; height:190px; background:#fff; overflow-x:auto;
  border:1px solid var(--line); border-radius:8px; padding:10px 12px 6px; }
.chart .day { flex:1 0 26px; max-width:64px; display:flex; flex-direction:column; align-items:center;
  gap:3px; min-width:26px; }
.chart .track { flex:1; width:70%; display:flex; align-items:flex-end; background:#f9fafb;
  border-radius:3px 3px 0 0; }
.chart .bar { width:100%; background:var(--accent); border-radius:3px 3px 0 0; }
.chart .value, .chart .label { font-size:10.5px; color:var(--muted); white-space:nowrap; }
.chart .value { min-height:14px; }
"""


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def wf_url(workflow_id: str, suffix: str = "") -> str:
    return f"/workflows/{quote(workflow_id, safe='')}{suffix}"


def api_url(workflow_id: str, suffix: str = "") -> str:
    return f"/api/workflows/{quote(workflow_id, safe='')}{suffix}"


def link(href: str, text: str, **params: str) -> str:
    query = {k: v for k, v in params.items() if v}
    target = href + ("?" + urlencode(query) if query else "")
    return f'<a href="{esc(target)}">{esc(text)}</a>'


def badge(status: str) -> str:
    return f'<span class="badge s-{esc(status)}">{esc(status)}</span>'


def hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{esc(name)}" value="{esc(value)}">'


def post_button(
    action: str,
    label: str,
    secret: str,
    *,
    css: str = "",
    fields: dict[str, str] | None = None,
    test_id: str = "",
) -> str:
    extra = "".join(hidden(k, v) for k, v in (fields or {}).items())
    tid = f' data-testid="{esc(test_id)}"' if test_id else ""
    return (
        f'<form class="inline" method="post" action="{esc(action)}">{hidden("csrf", secret)}{extra}'
        f'<button type="submit" class="{esc(css)}"{tid}>{esc(label)}</button></form>'
    )


def pre_json(text: str, *, css: str = "", full_href: str | None = None) -> str:
    note = ""
    if len(text) > MAX_PRE_CHARS:
        rest = len(text) - MAX_PRE_CHARS
        text = text[:MAX_PRE_CHARS]
        more = f' <a href="{esc(full_href)}">full JSON</a>' if full_href else ""
        note = f'<div class="muted">… {rest} more characters not shown.{more}</div>'
    return f'<pre class="{esc(css)}">{esc(text)}</pre>{note}'


def layout(title: str, body: str, *, refresh_seconds: int | None = None) -> str:
    refresh = f'<meta http-equiv="refresh" content="{refresh_seconds}">' if refresh_seconds else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"{refresh}<title>{esc(title)} · durable</title><style>{STYLE}</style></head><body>"
        '<header><span class="brand">durable</span><a href="/workflows">Workflows</a>'
        '<a href="/inbox">Inbox</a><a href="/usage">Usage</a></header>'
        f"<main>{body}</main></body></html>"
    )
