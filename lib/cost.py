"""Pay-per-second Cloud Run versus an always-on machine with the same GPU: dated prices and the arithmetic.

The price table is data (editable on the Cost page); `compare` returns every step of the sum so the
page can show its working. Prices are list prices and change: check the `source` pages before quoting.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from typing import Any, Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lib.errors import UserError

__all__ = [
    "PriceRow",
    "PriceTable",
    "DEFAULT_PRICES",
    "CostStep",
    "CostComparison",
    "compare",
    "table_from_rows",
    "instance_seconds_from_counts",
    "HOURS_PER_MONTH",
]

HOURS_PER_MONTH = 730.0


class PriceRow(BaseModel):
    """One GPU: Cloud Run per-second prices (instance-based billing) and the matching always-on machine."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gpu: str = Field(min_length=1)
    cloud_run_gpu_usd_per_s: float = Field(ge=0)
    cloud_run_vcpu_usd_per_s: float = Field(ge=0)
    cloud_run_gib_usd_per_s: float = Field(ge=0)
    cloud_run_vcpu: float = Field(gt=0)  # the minimum Cloud Run allows with this GPU
    cloud_run_gib: float = Field(gt=0)
    machine: str = Field(min_length=1)
    machine_usd_per_h: float = Field(ge=0)
    gke_fee_usd_per_h: float = Field(default=0.10, ge=0)  # GKE Standard cluster management fee
    note: str = ""


class PriceTable(BaseModel):
    """Prices as of a date, in one currency, with where they came from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    as_of: date
    currency: str = "USD"
    region: str
    source: str
    rows: tuple[PriceRow, ...]

    def row(self, gpu: str) -> PriceRow:
        for row in self.rows:
            if row.gpu == gpu:
                return row
        raise UserError(f"no price for GPU {gpu!r}; known: {', '.join(r.gpu for r in self.rows)}")


DEFAULT_PRICES = PriceTable(
    as_of=date(2026, 11, 28),
    region="europe-west4 / us-central1 (tier 1), on-demand list prices, no discounts",
    source="https://cloud.google.com/run/pricing ; https://cloud.google.com/compute/gpus-pricing ; "
    "https://cloud.google.com/kubernetes-engine/pricing",
    rows=(
        PriceRow(
            gpu="nvidia-l4",
            cloud_run_gpu_usd_per_s=0.0001867,
            cloud_run_vcpu_usd_per_s=0.000018,
            cloud_run_gib_usd_per_s=0.000002,
            cloud_run_vcpu=4,
            cloud_run_gib=16,
            machine="g2-standard-4 (1x L4, 4 vCPU, 16 GB)",
            machine_usd_per_h=0.7068,
            note="L4 without zonal redundancy; verify before quoting",
        ),
        PriceRow(
            gpu="nvidia-rtx-pro-6000",
            cloud_run_gpu_usd_per_s=0.000833,
            cloud_run_vcpu_usd_per_s=0.000018,
            cloud_run_gib_usd_per_s=0.000002,
            cloud_run_vcpu=20,
            cloud_run_gib=80,
            machine="g4-standard-48 (1x RTX PRO 6000, 48 vCPU, 180 GB)",
            machine_usd_per_h=4.50,
            note="estimate, not checked against the price list: edit before use",
        ),
    ),
)


def table_from_rows(
    rows: Iterable[dict[str, Any]], *, as_of: date, base: PriceTable = DEFAULT_PRICES
) -> PriceTable:
    """A table from edited rows (the Cost page's data editor); bad cells raise `UserError` naming the GPU."""
    parsed = []
    for i, raw in enumerate(rows, start=1):
        clean = {k: v for k, v in raw.items() if v is not None and v == v}  # drop blank and NaN cells
        try:
            parsed.append(PriceRow(**clean))
        except ValidationError as exc:
            where = clean.get("gpu") or f"row {i}"
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise UserError(f"price table, {where}: {problems}") from None
    if not parsed:
        raise UserError("the price table is empty")
    return base.model_copy(update={"rows": tuple(parsed), "as_of": as_of})


@dataclass(frozen=True)
class CostStep:
    """One line of the working: what, how, how much."""

    label: str
    formula: str
    value: float
    unit: str


@dataclass(frozen=True)
class CostComparison:
    """Cloud Run for the measured instance time versus always-on machines over the same window."""

    gpu: str
    window_s: float
    instance_s: float
    cloud_run_usd_per_instance_h: float
    cloud_run_usd: float
    always_on_usd: float
    gke_usd: float
    cloud_run_usd_per_month: float
    always_on_usd_per_month: float
    break_even_mean_instances: float  # Cloud Run is cheaper while fewer instances than this are up on average
    cheaper: str
    steps: tuple[CostStep, ...]


def compare(
    row: PriceRow,
    *,
    instance_s: float,
    window_s: float,
    machines: int = 1,
    vcpu: float | None = None,
    memory_gib: float | None = None,
) -> CostComparison:
    """Cost of `instance_s` Cloud Run instance-seconds within `window_s`, versus `machines` always on."""
    if window_s <= 0:
        raise UserError(f"the time window must be > 0 seconds, got {window_s}")
    if instance_s < 0:
        raise UserError(f"instance time must be >= 0 seconds, got {instance_s}")
    if machines < 1:
        raise UserError(f"the always-on side needs at least one machine, got {machines}")
    vcpu = row.cloud_run_vcpu if vcpu is None else vcpu
    gib = row.cloud_run_gib if memory_gib is None else memory_gib
    per_s = (
        row.cloud_run_gpu_usd_per_s + vcpu * row.cloud_run_vcpu_usd_per_s + gib * row.cloud_run_gib_usd_per_s
    )
    cloud_run = instance_s * per_s
    hours = window_s / 3600
    always_on = machines * hours * row.machine_usd_per_h
    gke = machines * hours * row.machine_usd_per_h + hours * row.gke_fee_usd_per_h
    scale = HOURS_PER_MONTH * 3600 / window_s
    cr_month, ao_month = cloud_run * scale, machines * HOURS_PER_MONTH * row.machine_usd_per_h
    break_even = (machines * row.machine_usd_per_h) / (per_s * 3600) if per_s > 0 else float("inf")
    steps = (
        CostStep(
            "Cloud Run price per instance-second",
            f"GPU {row.cloud_run_gpu_usd_per_s:g} + {vcpu:g} vCPU x {row.cloud_run_vcpu_usd_per_s:g} "
            f"+ {gib:g} GiB x {row.cloud_run_gib_usd_per_s:g}",
            per_s,
            "USD/s",
        ),
        CostStep(
            "Cloud Run for the measured instance time",
            f"{instance_s:,.0f} s x {per_s:.7f} USD/s",
            cloud_run,
            "USD",
        ),
        CostStep(
            "Always-on machines over the same window",
            f"{machines} x {hours:.3f} h x {row.machine_usd_per_h:g} USD/h ({row.machine})",
            always_on,
            "USD",
        ),
        CostStep(
            "GKE Standard: the same nodes plus the cluster fee",
            f"{always_on:.4f} + {hours:.3f} h x {row.gke_fee_usd_per_h:g} USD/h",
            gke,
            "USD",
        ),
        CostStep(
            "Cloud Run per month if this pattern repeats",
            f"{cloud_run:.4f} USD x ({HOURS_PER_MONTH:g} h / {hours:.3f} h)",
            cr_month,
            "USD",
        ),
        CostStep(
            "Always-on per month",
            f"{machines} x {HOURS_PER_MONTH:g} h x {row.machine_usd_per_h:g} USD/h",
            ao_month,
            "USD",
        ),
        CostStep(
            "Break-even: Cloud Run is cheaper while instances are up less than",
            f"{machines} x {row.machine_usd_per_h:g} USD/h / ({per_s:.7f} USD/s x 3600)",
            break_even,
            "instances on average",
        ),
    )
    return CostComparison(
        gpu=row.gpu,
        window_s=window_s,
        instance_s=instance_s,
        cloud_run_usd_per_instance_h=per_s * 3600,
        cloud_run_usd=cloud_run,
        always_on_usd=always_on,
        gke_usd=gke,
        cloud_run_usd_per_month=cr_month,
        always_on_usd_per_month=ao_month,
        break_even_mean_instances=break_even,
        cheaper="Cloud Run" if cloud_run < always_on else ("always-on" if always_on < cloud_run else "equal"),
        steps=steps,
    )


def instance_seconds_from_counts(
    points: Sequence[tuple[float, float]], *, until_s: float | None = None
) -> float:
    """Integrate an instance-count series [(t_unix_s, instances), ...] as a step function (each value holds
    until the next point, the last until `until_s`)."""
    pts = sorted(points)
    total = 0.0
    for (t, n), (t_next, _) in itertools.pairwise(pts):
        total += n * (t_next - t)
    if pts and until_s is not None and until_s > pts[-1][0]:
        total += pts[-1][1] * (until_s - pts[-1][0])
    return total
