"""The billing rules one at a time, on hand-made inputs with the arithmetic written out.

Proration by days for months of 28, 29, 30 and 31 days; a member joining mid-month; a bundle
billed per port; SLA credits by started day with merging, clipping and the cap; grosz
rounding half up; the transit shares by every method (through ``peerpool.economics.allocation``)
adding up exactly by largest remainder; the billing month's UTC bounds across DST changes.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest

from peerpool.billing import credits, fees
from peerpool.billing.allocate import allocate
from peerpool.billing.money import grosz
from peerpool.billing.period import Month
from peerpool.billing.ranking import rank
from peerpool.billing.serving import ContractBill, ContractSamples, Outage
from peerpool.billing.transit import ContractResult, MemberSeries, Pool
from peerpool.config.model import Exchange, Member, MemberPort, PortFee
from peerpool.errors import BillingError

UTC = dt.UTC
WARSAW = "Europe/Warsaw"


def member(joined: dt.date, left: dt.date | None = None, member_id: str = "AS64500") -> Member:
    return Member(
        id=member_id, asn=int(member_id[2:]), name="M", billing_entity="M", joined=joined, left=left
    )


def port(
    connected: dt.date,
    disconnected: dt.date | None = None,
    speed: int = 10000,
    bundle: str = "",
    interface: str = "et-0/0/1",
) -> MemberPort:
    return MemberPort(
        id=f"sw1:{interface}",
        switch="sw1",
        interface=interface,
        ifindex=1,
        speed_mbps=speed,
        vlan=100,
        member="AS64500",
        macs=(),
        connected=connected,
        disconnected=disconnected,
        bundle=bundle,
    )


def exchange(m: Member, ports: list[MemberPort]) -> Exchange:
    return Exchange(
        name="X",
        sites=(),
        switches=(),
        members=(m,),
        ports=tuple(ports),
        border_routers=(),
        transit_contracts=(),
        port_fees=(PortFee(1000, Decimal("300.00")), PortFee(10000, Decimal("900.00"))),
    )


def fee(
    connected: dt.date, disconnected: dt.date | None, month: str, joined: dt.date = dt.date(2020, 1, 1)
) -> str:
    m = member(joined)
    p = port(connected, disconnected)
    line = fees.port_fee_line(exchange(m, [p]), p, Month.parse(month, WARSAW))
    return "none" if line is None else f"{line.amount} ({line.quantity} {line.unit})"


@pytest.mark.parametrize(
    ("connected", "disconnected", "month", "expected"),
    [
        # whole months are exactly the fee whatever their length
        (dt.date(2020, 1, 1), None, "2026-02", "900.00 (28 days of 28)"),
        (dt.date(2020, 1, 1), None, "2028-02", "900.00 (29 days of 29)"),
        (dt.date(2020, 1, 1), None, "2026-04", "900.00 (30 days of 30)"),
        (dt.date(2020, 1, 1), None, "2026-03", "900.00 (31 days of 31)"),
        # connected on the 10th, the connect day counts:
        # February 2026: days 10..28 = 19; 900 x 19 / 28 = 610.714285... -> 610.71
        (dt.date(2026, 2, 10), None, "2026-02", "610.71 (19 days of 28)"),
        # February 2028 (leap): days 10..29 = 20; 900 x 20 / 29 = 620.689655... -> 620.69
        (dt.date(2028, 2, 10), None, "2028-02", "620.69 (20 days of 29)"),
        # April: days 10..30 = 21; 900 x 21 / 30 = 630.00
        (dt.date(2026, 4, 10), None, "2026-04", "630.00 (21 days of 30)"),
        # March: days 10..31 = 22; 900 x 22 / 31 = 638.709677... -> 638.71
        (dt.date(2026, 3, 10), None, "2026-03", "638.71 (22 days of 31)"),
        # disconnected on the 15th (first day out of service): days 1..14
        # March: 900 x 14 / 31 = 406.451612... -> 406.45
        (dt.date(2020, 1, 1), dt.date(2026, 3, 15), "2026-03", "406.45 (14 days of 31)"),
        # connected and disconnected in the month: days 5..19 of April = 15; 900 x 15 / 30 = 450.00
        (dt.date(2026, 4, 5), dt.date(2026, 4, 20), "2026-04", "450.00 (15 days of 30)"),
        # connected on the last day: 1 day of 31 = 29.032258... -> 29.03
        (dt.date(2026, 3, 31), None, "2026-03", "29.03 (1 days of 31)"),
        # disconnected on the 1st: no day served; connected next month: none
        (dt.date(2020, 1, 1), dt.date(2026, 3, 1), "2026-03", "none"),
        (dt.date(2026, 4, 1), None, "2026-03", "none"),
        # a half grosz rounds up: 1G is 300.00; not possible with these fees, see test_grosz_half_up
    ],
)
def test_proration_by_days(
    connected: dt.date, disconnected: dt.date | None, month: str, expected: str
) -> None:
    assert fee(connected, disconnected, month) == expected


def test_member_joining_mid_month_bills_from_the_join_day() -> None:
    # the port was configured from the 1st but the membership starts on the 20th of April:
    # days 20..30 = 11; 900 x 11 / 30 = 330.00
    assert fee(dt.date(2026, 4, 1), None, "2026-04", joined=dt.date(2026, 4, 20)) == "330.00 (11 days of 30)"


def test_member_leaving_stops_the_fee() -> None:
    # left on the 11th of June (first day no longer a member): days 1..10; 900 x 10 / 30 = 300.00
    m = member(dt.date(2020, 1, 1), left=dt.date(2026, 6, 11))
    p = port(dt.date(2020, 1, 1))
    line = fees.port_fee_line(exchange(m, [p]), p, Month.parse("2026-06", WARSAW))
    assert line is not None and line.amount == Decimal("300.00")


def test_two_ports_in_one_bundle_are_two_fees() -> None:
    m = member(dt.date(2020, 1, 1))
    ports = [port(dt.date(2020, 1, 1), bundle="ae1", interface=f"et-0/0/{i}") for i in (1, 2)]
    x = exchange(m, ports)
    lines = [fees.port_fee_line(x, p, Month.parse("2026-05", WARSAW)) for p in ports]
    assert [(line.reference, line.amount) for line in lines if line] == [
        ("sw1:et-0/0/1", Decimal("900.00")),
        ("sw1:et-0/0/2", Decimal("900.00")),
    ]
    assert all(line and "bundle ae1" in line.description for line in lines)


def test_speed_without_fee_is_refused_with_the_fix() -> None:
    m = member(dt.date(2020, 1, 1))
    p = port(dt.date(2020, 1, 1), speed=400000)
    with pytest.raises(BillingError, match=r"400000 Mbps.*\[\[port_fees\]\]"):
        fees.port_fee_line(exchange(m, [p]), p, Month.parse("2026-05", WARSAW))


# --- SLA credits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "days"),
    [(0, 0), (1, 1), (180, 1), (86_400, 1), (86_401, 2), (2 * 86_400, 2), (2 * 86_400 + 60, 3)],
)
def test_started_days(seconds: int, days: int) -> None:
    start = dt.datetime(2026, 5, 3, 12, tzinfo=UTC)
    assert credits.started_days(start, start + dt.timedelta(seconds=seconds)) == days


def outage(start: dt.datetime, minutes: int, cause: str = "unreachable") -> Outage:
    return Outage("sw1:et-0/0/1", cause, start, start + dt.timedelta(minutes=minutes), minutes * 60)


def credit(outages: list[Outage], month: str = "2026-03", billed: str = "900.00", **kw: object) -> Decimal:
    m = Month.parse(month, WARSAW)
    service = kw.get("service", (m.start, m.end))
    line, _ = credits.credit_line(
        member_id="AS64500",
        port_id="sw1:et-0/0/1",
        monthly_fee=Decimal("900.00"),
        billed_fee=Decimal(billed),
        service=service,  # type: ignore[arg-type]
        outages=outages,
        causes=credits.EXCHANGE_FAULT,
        month=m,
    )
    return Decimal(0) if line is None else line.amount


def test_credit_is_a_thirtieth_per_started_day() -> None:
    t = dt.datetime(2026, 3, 10, 8, tzinfo=UTC)
    # 25 hours: 2 started days -> 900 x 2 / 30 = 60.00, as a negative line
    assert credit([outage(t, 25 * 60)]) == Decimal("-60.00")
    # three separate 5-minute faults: 3 started days -> 90.00
    assert credit(
        [outage(t, 5), outage(t + dt.timedelta(hours=2), 5), outage(t + dt.timedelta(days=3), 5)]
    ) == (Decimal("-90.00"))
    # oper-down is not credited under the default rule
    assert credit([outage(t, 60, cause="oper_down")]) == Decimal(0)


def test_overlapping_and_touching_outages_are_one_fault() -> None:
    t = dt.datetime(2026, 3, 10, 8, tzinfo=UTC)
    # 8:00-20:00, 19:00-23:00 (overlap), 23:00-09:00 next day (touches): one fault of 25 h -> 2 days -> 60.00
    outages = [
        outage(t, 12 * 60),
        outage(t + dt.timedelta(hours=11), 4 * 60),
        outage(t + dt.timedelta(hours=15), 600),
    ]
    assert credit(outages) == Decimal("-60.00")


def test_outage_across_the_month_end_is_split() -> None:
    # 31 March 20:00 UTC to 1 April 02:00 UTC; March ends at 31 March 22:00 UTC (midnight, CEST +02:00)
    start = dt.datetime(2026, 3, 31, 20, tzinfo=UTC)
    o = outage(start, 6 * 60)
    assert credit([o], "2026-03") == Decimal("-30.00")  # 2 h in March: 1 day
    assert credit([o], "2026-04") == Decimal("-30.00")  # 4 h in April: 1 day


def test_ongoing_outage_runs_to_its_last_poll() -> None:
    start = dt.datetime(2026, 3, 30, 0, tzinfo=UTC)
    ongoing = Outage("sw1:et-0/0/1", "unreachable", start, None, 3 * 3600)  # last poll 3 h after the start
    assert credit([ongoing]) == Decimal("-30.00")


def test_credit_is_capped_at_the_fee_billed() -> None:
    # 32 separate 10-minute faults in March: 32 started days -> 900 x 32 / 30 = 960.00 > 900.00 -> 900.00
    t = dt.datetime(2026, 3, 1, 0, tzinfo=UTC)
    outages = [outage(t + dt.timedelta(hours=20 * i), 10) for i in range(32)]
    assert credit(outages) == Decimal("-900.00")
    # a port billed 14 days of 31 (406.45): 16 faults 20 h apart from 1 March 00:00 UTC, the last on
    # 13 March 12:00 UTC, all before the disconnection (15 March local);
    # 16 x 30.00 = 480.00 -> capped at 406.45
    m = Month.parse("2026-03", WARSAW)
    service = (m.start, dt.date(2026, 3, 15))
    sixteen = [outage(t + dt.timedelta(hours=20 * i), 10) for i in range(16)]
    assert credit(sixteen, billed="406.45", service=service) == Decimal("-406.45")


def test_outage_outside_the_days_billed_is_not_credited() -> None:
    # the port was disconnected on 15 March: a fault on the 20th is not the member's service any more
    m = Month.parse("2026-03", WARSAW)
    o = outage(dt.datetime(2026, 3, 20, 8, tzinfo=UTC), 60)
    assert credit([o], billed="406.45", service=(m.start, dt.date(2026, 3, 15))) == Decimal(0)


# --- money -------------------------------------------------------------------------------------------


def test_grosz_half_up() -> None:
    assert grosz(Decimal("2.645")) == Decimal("2.65")  # half even would give 2.64
    assert grosz(Decimal("2.655")) == Decimal("2.66")
    assert grosz(Decimal("-2.645")) == Decimal("-2.65")  # ties away from zero
    assert grosz(Fraction(5, 1000)) == Decimal("0.01")
    assert grosz(Fraction(4999, 1_000_000)) == Decimal("0.00")
    assert grosz(Fraction(2, 3)) == Decimal("0.67")


def pool(total: str, commit_cost: str = "0") -> Pool:
    """A pooled bill of ``total``; one contract whose commit cost is ``commit_cost`` (capacity_share)."""
    ints = np.zeros(0, dtype=np.int64)
    flags = np.zeros(0, dtype=np.bool_)
    samples = ContractSamples(ints, ints, ints, ints, ints, ints, flags, flags)
    mart = ContractBill(
        "c", "P", "PLN", 95, "max", "exclude", WARSAW, 0, 0, 0, None, Decimal(0), Decimal(0), Decimal(0),
        Decimal(commit_cost), Decimal(0), Decimal(0), Decimal(total),
    )  # fmt: skip
    contract = ContractResult(
        mart, samples, {}, "", None, None, Decimal(commit_cost), Decimal(0), Decimal(0), Decimal(total),
        Decimal(total), (), [],
    )  # fmt: skip
    return Pool((contract,), Decimal(total), "PLN")


def series(ins: list[int]) -> MemberSeries:
    times = np.arange(len(ins), dtype=np.int64) * 300
    values = np.array(ins, dtype=np.int64)
    zeros = np.zeros(len(ins), dtype=np.int64)
    counted = np.ones(len(ins), dtype=np.bool_)
    return MemberSeries(
        times,
        values,
        zeros,
        ["measured"] * len(ins),
        rank(values, times, counted),
        rank(zeros, times, counted),
    )


def shares(
    method: str, total: str, p95: dict[str, str], ins: dict[str, list[int]] | None = None, **kw: str
) -> dict[str, str]:
    got = allocate(
        method,
        pool(total, **kw),
        {m: Decimal(v) for m, v in p95.items()},
        {m: series(v) for m, v in (ins or {}).items()},
    )
    return {m: str(a) for m, a in got.amounts.items()}


def test_proportional_shares_by_hand() -> None:
    # 100.00 over 1 : 1 : 1 -> 33.333... each: floors 33.33 x 3 = 99.99, one grosz left; all remainders
    # equal (1/3 grosz) -> the smallest member id gets it
    assert shares("proportional_p95", "100.00", {"AS3": "1", "AS1": "1", "AS2": "1"}) == {
        "AS1": "33.34", "AS2": "33.33", "AS3": "33.33",
    }  # fmt: skip
    # 0.05 over 7 : 2 : 1 -> 3.5, 1.0, 0.5 grosz: floors 3 + 1 + 0 = 4, one left; remainders 0.5 (AS1),
    # 0 (AS2), 0.5 (AS3): tie to the smaller id
    assert shares("proportional_p95", "0.05", {"AS1": "7", "AS2": "2", "AS3": "1"}) == {
        "AS1": "0.04", "AS2": "0.01", "AS3": "0.00",
    }  # fmt: skip
    # nobody used transit but the commit is paid: split equally, 0.10 -> 0.04, 0.03, 0.03
    assert shares("proportional_p95", "0.10", {"AS1": "0", "AS2": "0", "AS3": "0"}) == {
        "AS1": "0.04", "AS2": "0.03", "AS3": "0.03",
    }  # fmt: skip


def test_shares_never_lose_or_create_a_grosz() -> None:
    rng = random.Random(20260201)
    for _ in range(200):
        total = Decimal(rng.randrange(0, 10**9)) / 100
        p95 = {f"AS{i}": str(Decimal(rng.randrange(0, 10**8)) / 10**4) for i in range(rng.randrange(1, 60))}
        got = shares("proportional_p95", f"{total:.2f}", p95)
        assert sum(Decimal(v) for v in got.values()) == total
        weight_sum = sum(Fraction(Decimal(v)) for v in p95.values())
        for member, share in got.items():
            exact = Fraction(total) * Fraction(Decimal(p95[member])) / weight_sum if weight_sum else None
            if exact is not None:
                assert abs(Fraction(Decimal(share)) - exact) < Fraction(1, 100)  # never a grosz off its quota


# two members over 20 intervals (inbound bytes; outbound 0):
#   A = 1 x 18, 9, 3   -> alone: sorted 1 x 18, 3, 9; k = ceil(0.95 x 20) = 19 -> 3
#   B = 1 x 18, 1, 5   -> alone: sorted 1 x 19, 5 -> 1
#   A + B = 2 x 18, 10, 8 -> sorted 2 x 18, 8, 10 -> 8
A_IN = [1] * 18 + [9, 3]
B_IN = [1] * 18 + [1, 5]


def test_peak_contribution_by_hand() -> None:
    # the pool's peak intervals are those >= its 95th (8): the last two; A sends 9 + 3 = 12 in them,
    # B 1 + 5 = 6: 2 : 1 of 3.00 -> 2.00 and 1.00
    got = shares("peak_contribution", "3.00", {"A": "3", "B": "1"}, {"A": A_IN, "B": B_IN})
    assert got == {"A": "2.00", "B": "1.00"}


def test_shapley_by_hand() -> None:
    # two players: phi_A = 1/2 v(A) + 1/2 (v(AB) - v(B)) = 1/2 x 3 + 1/2 x (8 - 1) = 5
    #              phi_B = 1/2 v(B) + 1/2 (v(AB) - v(A)) = 1/2 x 1 + 1/2 x (8 - 3) = 3
    # 8.00 in proportion 5 : 3 -> 5.00 and 3.00 (proportional to own 95th would be 6.00 and 2.00)
    got = shares("shapley", "8.00", {"A": "3", "B": "1"}, {"A": A_IN, "B": B_IN})
    assert got == {"A": "5.00", "B": "3.00"}


def test_capacity_share_by_hand() -> None:
    # required = own 95th (3 and 1); commit cost 60.00 of a 100.00 bill; nobody uses more than required,
    # so both parts go 3 : 1 -> 75.00 and 25.00
    assert shares("capacity_share", "100.00", {"A": "3", "B": "1"}, commit_cost="60.00") == {
        "A": "75.00", "B": "25.00",
    }  # fmt: skip


def test_a_pool_bill_without_members_to_share_it_is_refused() -> None:
    with pytest.raises(BillingError, match="no member has transit use"):
        shares("proportional_p95", "10.00", {})


# --- the month ---------------------------------------------------------------------------------------


def test_month_bounds_in_utc_across_dst() -> None:
    march = Month.parse("2026-03", WARSAW)
    # 1 March 00:00 CET (+01:00) to 1 April 00:00 CEST (+02:00): 31 days minus the lost hour
    assert march.start_utc == dt.datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert march.end_utc == dt.datetime(2026, 3, 31, 22, tzinfo=UTC)
    assert (march.end_utc - march.start_utc) == dt.timedelta(hours=31 * 24 - 1)
    october = Month.parse("2026-10", WARSAW)
    assert (october.end_utc - october.start_utc) == dt.timedelta(hours=31 * 24 + 1)
    assert Month.parse("2026-01", WARSAW).previous().label == "2025-12"
    assert Month.parse("2026-12", WARSAW).end == dt.date(2027, 1, 1)
