"""Why a pipeline's latency is above the baseline's: the layer where it falls behind and
the resource that layer loads most.

A dynamic pipeline streams fewer bit planes than ``static``, so its latency should be no
longer; where it is (its image 0 competes with the images streaming behind it, which reach
a shared unit at other times than static's), the summary names where: the graph node whose
finish of image 0 slips most against the baseline's relative to its producers'
(``EngineResult.node_done_ns``), and that node's busiest resource per image
(``PipelineResult.layer_busiest``, from the bound's demands).
"""

from __future__ import annotations

from typing import Any


def slower_than(pr: Any, base: Any) -> dict[str, Any] | None:
    """Where pipeline *pr* loses time against *base* (the same mapped network), or None
    when its latency is not above *base*'s."""
    if pr.latency_ns <= base.latency_ns * (1 + 1e-9):
        return None
    done, ref = pr.timing.node_done_ns, base.timing.node_done_ns
    if not done or not ref:
        return None
    delta = {n: done[n][0] - ref[n][0] for n in done if n in ref and done[n] and ref[n]}
    worst, lost = None, 0.0
    for name, plan in sorted(pr.plans.items(), key=lambda kv: kv[1].order):
        if name not in delta:
            continue
        before = max((delta[p] for p in plan.producers if p in delta), default=0.0)
        if delta[name] - before > lost:
            worst, lost = name, delta[name] - before
    out: dict[str, Any] = {"by_ns": pr.latency_ns - base.latency_ns,
                           "ratio": pr.latency_ns / base.latency_ns}
    if worst is None:
        return out
    out.update({"loses_most_at": worst, "lost_ns": lost})
    res = (pr.layer_busiest or {}).get(worst)
    if res:
        out["resource"] = res
    return out


def slower_text(name: str, base: str, s: dict[str, Any]) -> str:
    """One line for the printed table."""
    text = (f"{name}'s latency is {100 * (s['ratio'] - 1):.1f} % above {base}'s "
            f"(+{s['by_ns'] / 1e3:.2f} µs)")
    if "loses_most_at" in s:
        text += (f": its image 0 loses most at {s['loses_most_at']} "
                 f"(+{s['lost_ns'] / 1e3:.2f} µs)")
        r = s.get("resource")
        if r:
            text += (f", whose busiest resource is the {r['unit']} ({r['where']}), shared "
                     "with the images streaming behind")
    return text
