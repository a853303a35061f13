"""Memory and flash report for any TFLite model on stock TFLM, beside what our planner
makes of it.

Arena figures come from the real interpreter (the wheel's recording allocator); the
memory model's prediction, the planned arena (measured in the wheel too) and the lower
bound sit beside them, per op and in total.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os

from tflm_vit import runtime
from tflm_vit.tflite_model import ModelInfo, load_model

@dataclasses.dataclass
class OpRow:
    index: int
    op: str
    output_shapes: list
    input_bytes: int  # activation (non-constant) inputs
    output_bytes: int
    weight_bytes: int  # constant inputs (flash)
    live_bytes: int  # all activations alive while this op runs (16-byte aligned)
    planned_bytes: int = 0  # arena bytes in use at this op with our plan
    bound_bytes: int = 0  # bytes no plan can avoid at this op
    macs: int = 0
    instructions: int = 0  # the latency model's prediction on latency_cpu


@dataclasses.dataclass
class MemoryReport:
    name: str
    flash: int  # model bytes
    weight_bytes: int
    arena_total: int
    arena_head: int
    arena_tail: int
    tail_buckets: dict
    ops: list[OpRow]
    predicted_arena: int = 0  # the memory model, for the model as given
    planned_arena: int = 0  # measured in the wheel with our offline plan
    lower_bound: int = 0  # head bound + tail
    bound_op: str = ""  # the op where the bound is reached ("3 TV_ATTENTION")
    plan_note: str = ""  # why there is no plan, if there is none
    latency_cpu: str = ""  # the CPU of the latency model's prediction
    instructions: int = 0  # predicted instructions of one Invoke() there
    macs: int = 0
    latency_fallback_ops: int = 0  # ops of kinds never counted (all-kinds fit used)

    @property
    def peak_live_bytes(self) -> int:
        return max((r.live_bytes for r in self.ops), default=0)

    def to_dict(self, with_ops=True) -> dict:
        d = dataclasses.asdict(self)
        if not with_ops:
            d.pop("ops")
        return d

    def to_json(self, with_ops=True) -> str:
        return json.dumps(self.to_dict(with_ops), indent=1)


def op_rows(info: ModelInfo, live: list[int]) -> list[OpRow]:
    """Per-op sizes; `live`: arena bytes in use at each op (the memory model's figure)."""
    rows = []
    for op in info.ops:
        ins = [info.tensors[t] for t in op.inputs if t >= 0]
        outs = [info.tensors[t] for t in op.outputs]
        rows.append(OpRow(
            op.index, op.name, [list(t.shape) for t in outs],
            sum(t.nbytes for t in ins if not t.is_constant), sum(t.nbytes for t in outs),
            sum(t.nbytes for t in ins if t.is_constant), live[op.index]))
    return rows


def add_latency(report: MemoryReport, data: bytes, cpu: str) -> None:
    """The latency model's instructions per op (tflm_vit/latency.py) on `cpu`."""
    from tflm_vit.latency import predict_latency
    pred = predict_latency(data, cpu)
    for row, op in zip(report.ops, pred.ops):
        row.macs, row.instructions = op.macs, op.instructions
    report.latency_cpu, report.instructions, report.macs = cpu, pred.instructions, pred.macs
    report.latency_fallback_ops = sum(not op.fitted for op in pred.ops)


def analyze(model, name: str | None = None, latency_cpu: str | None = "cortex-m7") -> MemoryReport:
    """Report for a model (path or bytes). Raises a clear error for a file that is not a
    TFLite model, a corrupted one, or one using an op the wheel cannot resolve."""
    from tflm_vit.errors import PlanError
    from tflm_vit.memory import plan_model, predict

    data, info = load_model(model)
    alloc = runtime.allocations(data)
    given = predict(data)
    report = MemoryReport(
        name=name or (os.path.basename(os.fspath(model))
                      if isinstance(model, (str, os.PathLike)) else "model"),
        flash=len(data), weight_bytes=sum(t.nbytes for t in info.tensors if t.is_constant),
        arena_total=alloc.total, arena_head=alloc.head, arena_tail=alloc.tail,
        tail_buckets=alloc.buckets, ops=op_rows(info, [op.live_bytes for op in given.ops]),
        predicted_arena=given.total)
    if latency_cpu:
        add_latency(report, data, latency_cpu)
    try:
        planned = plan_model(data)
    except PlanError as e:
        report.plan_note = str(e)
        return report
    report.planned_arena = runtime.allocations(planned.model).total
    report.lower_bound = planned.after.lower_bound
    at = planned.after.bound_op
    report.bound_op = f"{at} {planned.after.ops[at].op}" if at >= 0 else ""
    for row, op in zip(report.ops, planned.after.ops):
        row.planned_bytes, row.bound_bytes = op.live_bytes, op.bound_bytes
    return report


def format_report(report: MemoryReport, with_ops: bool = True, width: int = 150) -> str:
    """Text tables (summary, tail buckets, per-op sizes) for a terminal."""
    from rich.console import Console
    from rich.table import Table

    buf = io.StringIO()
    console = Console(file=buf, width=width, no_color=True)
    summary = Table(title=f"TFLM memory: {report.name}", show_header=True)
    for col in ("arena total", "head (tensors)", "tail (persistent)", "flash (model)",
                "weights", "peak live activations"):
        summary.add_column(col, justify="right")
    summary.add_row(*(f"{v:,}" for v in (report.arena_total, report.arena_head,
                                          report.arena_tail, report.flash,
                                          report.weight_bytes, report.peak_live_bytes)))
    console.print(summary)
    plan = Table(title="arena: as given vs planned (token overwriting) vs lower bound")
    for col in ("TFLM (as given)", "memory model", "planned (TFLM)", "lower bound",
                "bound set by op", "as given / planned"):
        plan.add_column(col, justify="right")
    if report.planned_arena:
        plan.add_row(f"{report.arena_total:,}", f"{report.predicted_arena:,}",
                     f"{report.planned_arena:,}", f"{report.lower_bound:,}",
                     report.bound_op, f"{report.arena_total / report.planned_arena:.2f}x")
        console.print(plan)
    else:
        console.print(f"no plan: {report.plan_note}")
    if report.latency_cpu:
        note = (f"; {report.latency_fallback_ops} ops of kinds never counted use the "
                "all-kinds fit" if report.latency_fallback_ops else "")
        console.print(f"latency model on {report.latency_cpu}: {report.instructions:,} "
                      f"instructions per inference, {report.macs:,} MACs{note}")
    if report.tail_buckets:
        tail = Table(title="tail allocations (TFLM recording allocator)")
        for col in ("bucket", "used", "requested", "count"):
            tail.add_column(col, justify="left" if col == "bucket" else "right")
        for k, (used, req, n) in report.tail_buckets.items():
            tail.add_row(k, f"{used:,}", f"{req:,}", f"{n:,}")
        console.print(tail)
    if with_ops:
        ops = Table(title="per op (bytes)")
        for col in ("#", "op", "output shape", "in act", "out", "weights", "live",
                    "planned", "bound", "MACs", "instructions"):
            ops.add_column(col, justify="left" if col in ("op", "output shape") else "right")
        for r in report.ops:
            ops.add_row(str(r.index), r.op, " ".join(str(s) for s in r.output_shapes),
                        f"{r.input_bytes:,}", f"{r.output_bytes:,}", f"{r.weight_bytes:,}",
                        f"{r.live_bytes:,}", f"{r.planned_bytes:,}", f"{r.bound_bytes:,}",
                        f"{r.macs:,}", f"{r.instructions:,}")
        console.print(ops)
    return buf.getvalue()


def draw_timeline(ax, report: MemoryReport, annotate_peak: bool = True) -> None:
    """Live activation bytes per op on a matplotlib axis, with TFLM's arena head and total."""
    x = [r.index for r in report.ops]
    ax.step(x, [r.live_bytes / 1024 for r in report.ops], where="mid",
            label="live activations (as given)")
    if report.planned_arena:
        ax.step(x, [r.planned_bytes / 1024 for r in report.ops], where="mid",
                label="planned (token overwriting)")
        ax.step(x, [r.bound_bytes / 1024 for r in report.ops], where="mid", ls="--",
                label="lower bound")
    ax.axhline(report.arena_head / 1024, color="tab:orange", ls="--", label="TFLM arena head")
    ax.axhline(report.arena_total / 1024, color="tab:red", ls=":", label="TFLM arena total")
    peak = max(report.ops, key=lambda r: r.live_bytes, default=None)
    if annotate_peak and peak is not None:
        ax.annotate(f"peak at op {peak.index} ({peak.op})", (peak.index, peak.live_bytes / 1024),
                    textcoords="offset points", xytext=(5, 5), fontsize=8)
    ax.set_xlabel("operator index")
    ax.set_ylabel("KiB")


def plot_timeline(report: MemoryReport, path: str) -> None:
    """PNG of live activation bytes per op, with TFLM's arena head and total."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, min(24.0, len(report.ops) / 12)), 3.6))
    draw_timeline(ax, report)
    ax.set_title(f"{report.name}: live bytes per op")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
