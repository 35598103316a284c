"""One self-contained HTML page (inline CSS, PNGs as data URIs) for a results folder."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

from simulator.results.plots import PLOT_NAMES, load_summary

#: Caption of each plot, by file stem.
CAPTIONS = {
    "utilization": "Utilization over time: busy fraction (busy instance-time / bin × powered "
                   "instances) of each component class, one line per pipeline.",
    "power": "Dynamic power over time (mW = pJ booked in the bin / bin width), stacked by "
             "component (largest components separately, the rest as 'other'); one panel per "
             "pipeline on shared axes.",
    "energy_breakdown": "Energy per image by component (dynamic components and static:* "
                        "leakage), grouped bars per pipeline; the title gives the totals and the "
                        "redy/static ratio.",
    "energy_per_layer": "Energy per image of every layer in network order, grouped bars per "
                        "pipeline.",
    "bits_histogram": "Distribution of the number of bit planes streamed per activation group, "
                      "summed over all layers (fraction of groups), per pipeline.",
    "bits_histogram_layers": "Bit planes per activation group, one small panel per layer.",
    "tile_heatmap": "Crossbar utilization of every tile on the chip floor plan (routers of the "
                    "concentrated mesh as blocks of tiles; grey = tile not used), one panel per "
                    "pipeline, common colour scale 0..1.",
}

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:24px auto;
max-width:1150px;color:#222;background:#fff;line-height:1.4}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.2em;margin-top:1.6em;
border-bottom:1px solid #ddd;padding-bottom:.2em}
.meta{color:#555}.note{background:#f6f6f6;border-left:4px solid #bbb;padding:.5em .8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:4px 10px;text-align:right;vertical-align:top}
th{background:#f0f0f0}td.l,th.l{text-align:left}
td.ratio{background:#fff7ec;font-weight:600}.headline{font-size:1.1em}
figure{margin:1.2em 0;text-align:center}figure img{max-width:100%;height:auto;
border:1px solid #eee}figcaption{color:#444;font-size:.9em;margin-top:.3em;text-align:left}
"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _num(x: Any, fmt: str) -> str:
    if x is None:
        return "–"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return _e(x)
    return "–" if math.isnan(v) else format(v, fmt)


def _top_components(p: dict[str, Any], k: int = 3) -> str:
    comp = p.get("energy_pj", {}).get("by_component") or {}
    total = sum(comp.values()) or 1.0
    imgs = p.get("images") or 1
    top = sorted(comp.items(), key=lambda kv: -kv[1])[:k]
    return "<br>".join(f"{_e(c)} {v / imgs / 1e6:.3f} µJ ({100 * v / total:.0f}%)"
                       for c, v in top if v > 0) or "–"


def _measured(p: dict[str, Any]) -> str:
    """Measured throughput (results written before the bound existed: throughput_ips)."""
    if "throughput_measured_ips" not in p:
        return _num(p.get("throughput_ips"), ",.1f")
    v = p["throughput_measured_ips"]
    return _num(v, ",.1f") if v is not None else "– (stream images)"


def _bound_by(p: dict[str, Any]) -> str:
    u = p.get("bounding_unit") or {}
    if not u:
        return "–"
    ns = u.get("busy_ns_per_image")
    busy = f"<br>{ns / 1e3:,.1f} µs busy per image" if isinstance(ns, int | float) else ""
    return f"{_e(u.get('unit', '?'))} ({_e(u.get('where', ''))}){busy}"


def _per_image(p: dict[str, Any], count: str) -> float | None:
    """A count of summary.json per image (``counts`` are totals over the images)."""
    per = p.get("counts_per_image")
    if per is not None:
        return per.get(count)
    total = p.get("counts", {}).get(count)
    return total / (p.get("images") or 1) if total is not None else None


def headline_paragraph(summary: dict[str, Any]) -> str:
    """The run's one headline figure with its basis (summary.json ``headline``), or ''."""
    h = summary.get("headline")
    if not h or h.get("ratio") is None:
        return ""
    return (f'<p class="headline"><b>Headline:</b> redy / static energy per image '
            f"<b>×{_num(h['ratio'], '.3f')}</b>, {_e(h.get('basis', ''))}.</p>")


def comparison_table(summary: dict[str, Any]) -> str:
    """The per-pipeline comparison table (HTML), with the redy/static ratio column."""
    pipes: dict[str, Any] = summary.get("pipelines") or {}
    names = list(pipes)
    comp = summary.get("comparison") or {}

    def per_image(p: dict[str, Any]) -> float | None:
        e = p.get("energy_pj", {})
        if "per_image" in e:
            return e["per_image"] / 1e6
        return e.get("total", 0.0) / (p.get("images") or 1) / 1e6

    rows: list[tuple[str, list[str], str | None]] = [
        ("policy / fidelity", [f"{_e(p.get('policy', '?'))} / {_e(p.get('fidelity', '?'))}"
                               for p in pipes.values()], None),
        ("images", [_num(p.get("images"), ",.0f") for p in pipes.values()], None),
        ("latency (µs)", [_num((p.get("latency_ns") or 0) / 1e3, ",.2f")
                          for p in pipes.values()], "latency_ratio"),
        ("throughput, measured (img/s)", [_measured(p) for p in pipes.values()],
         "throughput_ratio"),
        ("throughput bound (img/s)", [_num(p.get("throughput_bound_ips"), ",.1f")
                                      for p in pipes.values()], None),
        ("bound by (busiest unit)", [_bound_by(p) for p in pipes.values()], None),
        ("energy / image (µJ)", [_num(per_image(p), ",.3f") for p in pipes.values()],
         "energy_ratio"),
        ("top components (per image)", [_top_components(p) for p in pipes.values()], None),
        ("ADC conversions / image", [_num(_per_image(p, "adc_conversions"), ",.0f")
                                     for p in pipes.values()], "adc_conversion_ratio"),
        ("crossbar reads / image", [_num(_per_image(p, "crossbar_reads"), ",.0f")
                                    for p in pipes.values()], "crossbar_read_ratio"),
        ("mean bits / group", [_num(p.get("mean_bits_per_group"), ".3f")
                               for p in pipes.values()], "mean_bits_ratio"),
    ]
    if any(p.get("accuracy") is not None for p in pipes.values()):
        rows.append(("top-1 accuracy (%)", [_num(p.get("accuracy"), ".2f")
                                            for p in pipes.values()], None))
    show_ratio = bool(comp)
    head = "".join(f"<th>{_e(n)}</th>" for n in names)
    if show_ratio:
        n_sim = (pipes.get("redy") or {}).get("images")
        head += (f"<th>redy / static<br>({_e(n_sim)} simulated image(s))</th>" if n_sim
                 else "<th>redy / static</th>")
    out = [f'<table class="cmp"><tr><th class="l">metric</th>{head}</tr>']
    for label, vals, rkey in rows:
        cells = "".join(f"<td>{v}</td>" for v in vals)
        if show_ratio:
            cells += (f'<td class="ratio">{_num(comp.get(rkey), ".3f")}</td>' if rkey
                      else "<td></td>")
        out.append(f'<tr><td class="l">{_e(label)}</td>{cells}</tr>')
    out.append("</table>")
    return "\n".join(out)


def _mapping_table(m: dict[str, Any]) -> str:
    used, avail = m.get("crossbars_used"), m.get("crossbars_available")
    share = (f" ({100 * used / avail:.1f}% of the chips)"
             if isinstance(used, int | float) and avail else "")
    rows = [("crossbars used", f"{_num(used, ',.0f')}{share}"),
            ("crossbars available", _num(avail, ",.0f")),
            ("tiles used", _num(m.get("tiles_used"), ",.0f")),
            ("chips", _num(m.get("chips"), ",.0f"))]
    return ('<table class="map">' + "".join(
        f'<tr><td class="l">{k}</td><td>{v}</td></tr>' for k, v in rows) + "</table>")


def _figure(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    cap = CAPTIONS.get(path.stem, path.stem)
    return (f'<figure id="{_e(path.stem)}"><img src="data:image/png;base64,{data}" '
            f'alt="{_e(path.stem)}"><figcaption><b>{_e(path.name)}</b> — {_e(cap)}'
            "</figcaption></figure>")


def write_report(results_dir: Path) -> Path:
    """Write results_dir/report.html from summary.json and the PNG plots already drawn.

    Plots are those of ``simulator.results.plots.PLOT_NAMES`` whose PNG exists (draw them first with
    ``draw_all``); each is embedded as a base64 data URI, so the page has no external files.
    """
    results_dir = Path(results_dir)
    s = load_summary(results_dir)
    pipes = s.get("pipelines") or {}
    title = f"redysim — {s.get('scenario', '?')}"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta"><b>scenario</b> {_e(s.get("scenario", "?"))} · <b>hardware</b> '
        f'{_e(s.get("hardware", "?"))} · <b>workload</b> {_e(s.get("workload", "?"))} · '
        f"<b>pipelines</b> {_e(', '.join(pipes))}</p>",
    ]
    if s.get("workload_note"):
        parts.append(f'<p class="note">{_e(s["workload_note"])}</p>')
    parts.append("<h2>Comparison</h2>")
    parts.append(headline_paragraph(s))
    sims = sorted({p.get("images") for p in pipes.values() if p.get("images")})
    if sims:
        parts.append(f'<p class="meta">The table covers the {"/".join(map(str, sims))} '
                     "image(s) streamed through the chip; '/ image' figures are means over "
                     "them.</p>")
    parts.append(comparison_table(s))
    if s.get("float_accuracy") is not None:
        parts.append(f"<p>float (unquantized) top-1 accuracy: "
                     f"{_num(s['float_accuracy'], '.2f')}%</p>")
    if s.get("comparison"):
        parts.append('<p class="meta">Ratio column: redy / static, from summary.json '
                     "<code>comparison</code>.</p>")
    if s.get("mapping"):
        parts.append("<h2>Mapping</h2>")
        parts.append(_mapping_table(s["mapping"]))
    figs = [results_dir / f"{n}.png" for n in PLOT_NAMES if (results_dir / f"{n}.png").is_file()]
    if figs:
        parts.append("<h2>Plots</h2>")
        parts += [_figure(p) for p in figs]
    wall = s.get("wall_s") or {}
    if wall:
        parts.append('<p class="meta">wall time: ' + ", ".join(
            f"{_e(k)} {_num(v, '.1f')} s" for k, v in wall.items()) + "</p>")
    parts.append("</body></html>")
    out = results_dir / "report.html"
    out.write_text("\n".join(parts), encoding="utf-8")
    return out
