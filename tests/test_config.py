"""exchange.toml: loading, validation messages, round trip, and ``peerpool config show/check``.

Expected values are read by eye from ``examples/exchange.toml``; every validation test
asserts the full message a user sees. Invalid files are made by editing the example text,
each edit asserted to have applied, so a test cannot pass on an unchanged file.
"""

from __future__ import annotations

import datetime as dt
import json
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from peerpool.cli import cli
from peerpool.config.dump import dump_exchange
from peerpool.config.load import ConfigProblems, load_exchange, loads_exchange
from peerpool.config.model import (
    Billing,
    BorderRouter,
    BorderRouterPort,
    Exchange,
    Member,
    MemberPort,
    PortFee,
    Site,
    SnmpSettings,
    Switch,
    TransitContract,
)
from peerpool.errors import ConfigError, InputError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "exchange.toml"
SRC = "exchange.toml"  # the source name the edited texts are loaded under


def example_text() -> str:
    return EXAMPLE.read_text("utf-8")


def edited(*edits: tuple[str, str]) -> str:
    """The example with each (old, new) replaced exactly once."""
    text = example_text()
    for old, new in edits:
        assert text.count(old) == 1, f"edit target not unique in the example: {old!r}"
        text = text.replace(old, new)
    return text


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigProblems) as info:
        loads_exchange(text, source=SRC)
    return info.value.problems


def only_problem(text: str) -> str:
    found = problems_of(text)
    assert len(found) == 1, found
    return found[0]


# --- the example ----------------------------------------------------------------------------
def test_example_loads_to_the_objects_written_in_it() -> None:
    ex = load_exchange(EXAMPLE)
    assert ex.name == "Example IX"
    assert ex.source == str(EXAMPLE)
    assert [s.id for s in ex.sites] == ["KTW", "WAW"]
    assert ex.billing == Billing(
        currency="PLN",
        vat_rate=Decimal("0.23"),
        timezone="Europe/Warsaw",
        transit_allocation="proportional_p95",
        member_visibility="totals",
    )
    ktw, waw = ex.switches
    assert ktw.snmp == SnmpSettings(version="2c", community_env="PEERPOOL_SNMP_COMMUNITY", profile="default")
    assert waw.snmp.version == "3" and waw.snmp.user == "peerpool"
    assert (waw.snmp.auth_protocol, waw.snmp.auth_key_env) == ("SHA", "PEERPOOL_SNMP_AUTH_KEY")
    assert (waw.snmp.priv_protocol, waw.snmp.priv_key_env) == ("AES", "PEERPOOL_SNMP_PRIV_KEY")
    assert ktw.sflow_agent_address == "10.255.0.1" and ktw.sampling_rate == 16384
    assert ex.member("AS64501") == Member(
        id="AS64501",
        asn=64501,
        name="Hosting Co",
        billing_entity="Hosting Co S.A.",
        joined=dt.date(2024, 3, 15),
        kind="hosting",
        prefixes=("203.0.113.0/24", "2001:db8:200::/48"),
    )
    p1, p2 = ex.ports
    assert p1 == MemberPort(
        id="ktw-sw1:et-0/0/1",
        switch="ktw-sw1",
        interface="et-0/0/1",
        ifindex=1001,
        speed_mbps=10000,
        vlan=100,
        member="AS64500",
        macs=("02:00:00:00:fa:00",),
        ipv4=("192.0.2.10",),
        ipv6=("2001:db8:ffff::10",),
        connected=dt.date(2024, 1, 1),
    )
    assert (p2.id, p2.counter_bits, p2.ipv6, p2.bundle) == ("waw-sw1:et-0/0/7", 32, (), "")
    assert ex.mac_table()[("02:00:00:00:fb:01", 100)] is p2
    (br,) = ex.border_routers
    assert br.ports == (
        BorderRouterPort(
            id="ktw-br1:xe-0/0/0", router="ktw-br1", interface="xe-0/0/0", ifindex=501, speed_mbps=100000
        ),
    )
    assert br.flow_exporter_address == "10.255.1.1" and br.sampling_rate_override is None
    (c,) = ex.transit_contracts
    assert (c.commit_mbps, c.price_per_mbps, c.burst_price_per_mbps) == (
        Decimal("20000"),
        Decimal("0.80"),
        Decimal("1.00"),
    )
    assert all(isinstance(v, Decimal) for v in (c.commit_mbps, c.price_per_mbps, c.burst_price_per_mbps))
    assert (c.ports, c.percentile, c.direction_rule, c.gap_policy) == (
        ("ktw-br1:xe-0/0/0",),
        95,
        "max",
        "exclude",
    )
    assert (c.term_start, c.term_end) == (dt.date(2026, 1, 1), dt.date(2027, 12, 31))
    assert ex.port_fee(10000) == Decimal("900.00") and ex.port_fee(100000) == Decimal("4500.00")
    (fee,) = ex.one_off_fees
    assert (fee.member, fee.month, fee.amount) == ("AS64501", "2026-10", Decimal("250.00"))


def test_environment_names_the_file_when_no_path_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERPOOL_CONFIG", str(EXAMPLE))
    assert load_exchange().name == "Example IX"
    monkeypatch.delenv("PEERPOOL_CONFIG")
    with pytest.raises(InputError, match=r"set PEERPOOL_CONFIG to the path of exchange\.toml"):
        load_exchange()


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(InputError) as info:
        load_exchange(missing)
    assert str(info.value) == f"{missing}: configuration file not found; check the path (or PEERPOOL_CONFIG)"


def test_invalid_toml_gives_line_and_column() -> None:
    # line 7 of the example is `name = "Example IX"`; break its closing quote
    text = edited(('name = "Example IX"', 'name = "Example IX'))
    with pytest.raises(ConfigError) as info:
        loads_exchange(text, source=SRC)
    assert not isinstance(info.value, ConfigProblems)
    assert str(info.value).startswith("exchange.toml: invalid toml: ")
    assert "(at line 7, column 19)" in str(info.value)


# --- round trip -------------------------------------------------------------------------------
def test_round_trip_of_the_example() -> None:
    ex = load_exchange(EXAMPLE)
    text = dump_exchange(ex)
    assert loads_exchange(text, source=ex.source) == ex
    # the text is plain TOML that tomllib reads, money stays a string
    raw = tomllib.loads(text)
    assert raw["transit_contracts"][0]["price_per_mbps"] == "0.80"
    assert raw["snmp"]["v3"]["priv_key_env"] == "PEERPOOL_SNMP_PRIV_KEY"


def built_exchange(name: str = "Test IX") -> Exchange:
    """An exchange made in code (as the simulator does), using fields the example leaves at defaults."""
    snmp = SnmpSettings(community_env="SNMP_RO")  # no profile name: dump must invent one
    return Exchange(
        name=name,
        sites=(Site(id="POZ", name="Poznań"),),
        switches=(
            Switch(id="poz-sw1", site="POZ", management_address="10.0.0.1", snmp=snmp),
            Switch(id="poz-sw2", site="POZ", management_address="10.0.0.2", snmp=snmp, sampling_rate=2048),
        ),
        members=(
            Member(
                id="AS65000",
                asn=65000,
                name='Quote "Q" \\ Net',
                billing_entity="Q Sp. z o.o.",
                joined=dt.date(2023, 5, 1),
                left=dt.date(2025, 6, 30),
                kind="transit",
            ),
        ),
        ports=(
            MemberPort(
                id="poz-sw1:xe-1",
                switch="poz-sw1",
                interface="xe-1",
                ifindex=1,
                speed_mbps=10000,
                vlan=10,
                member="AS65000",
                macs=("02:aa:00:00:00:01",),
                bundle="lag1",
                disconnected=dt.date(2025, 6, 30),
            ),
            MemberPort(
                id="poz-sw2:xe-1",
                switch="poz-sw2",
                interface="xe-1",
                ifindex=1,
                speed_mbps=10000,
                vlan=10,
                member="AS65000",
                macs=("02:aa:00:00:00:01",),
                bundle="lag1",
            ),
        ),
        border_routers=(
            BorderRouter(
                id="poz-br1",
                site="POZ",
                management_address="10.0.1.1",
                flow_exporter_address="2001:db8::1",
                snmp=snmp,
                sampling_rate_override=1000,
                ports=(
                    BorderRouterPort(
                        id="poz-br1:et-9", router="poz-br1", interface="et-9", ifindex=9, speed_mbps=100000
                    ),
                ),
            ),
        ),
        transit_contracts=(
            TransitContract(
                id="he",
                provider="HE",
                ports=("poz-br1:et-9",),
                commit_mbps=Decimal("1500.5"),
                price_per_mbps=Decimal("0"),
                burst_price_per_mbps=Decimal("0.125"),
                currency="USD",
                percentile=90,
                direction_rule="sum",
                gap_policy="zero",
                billing_timezone="UTC",
            ),
        ),
        port_fees=(PortFee(speed_mbps=10000, monthly_fee=Decimal("1000")),),
    )


def test_round_trip_of_an_exchange_built_in_code() -> None:
    ex = built_exchange()
    text = dump_exchange(ex)
    back = loads_exchange(text, source="")
    # one profile, invented and written once; the loaded settings carry its name
    assert text.count("[snmp.") == 1 and "[snmp.default]" in text
    assert back.switches[0].snmp.profile == "default"
    assert ex.switches[0].snmp.profile == ""
    # apart from that name every object is equal
    plain = SnmpSettings(community_env="SNMP_RO", profile="default")
    from dataclasses import replace

    expected = replace(
        ex,
        switches=tuple(replace(s, snmp=plain) for s in ex.switches),
        border_routers=tuple(replace(r, snmp=plain) for r in ex.border_routers),
    )
    assert back == expected


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(str.strip))
def test_any_name_survives_the_round_trip(name: str) -> None:
    """Quotes, backslashes, control characters and non-ASCII text are escaped so tomllib reads them back."""
    ex = built_exchange(name)
    assert loads_exchange(dump_exchange(ex), source="").name == name


def test_dump_header_and_notes_are_comments() -> None:
    ex = load_exchange(EXAMPLE)
    text = dump_exchange(ex, header="made by a test\nsecond line", notes={"member:AS64501": "TODO check"})
    assert text.startswith("# made by a test\n# second line\n")
    assert '# TODO check\n[[members]]\nid = "AS64501"' in text
    assert loads_exchange(text, source=ex.source) == ex


# --- validation: one problem each, full message -------------------------------------------------
PORT1 = 'member = "AS64500"\nmacs = ["02:00:00:00:fa:00"]'


def test_unknown_member_on_a_port() -> None:
    text = edited((PORT1, 'member = "AS64512"\nmacs = ["02:00:00:00:fa:00"]'))
    assert only_problem(text) == (
        "exchange.toml: port 'ktw-sw1:et-0/0/1' names member 'AS64512', which is not in [[members]]; "
        "add the member or fix the port"
    )


def test_a_mac_on_two_members() -> None:
    text = edited(('macs = ["02:00:00:00:fb:01"]', 'macs = ["02:00:00:00:FA:00"]'))
    assert only_problem(text) == (
        "exchange.toml: mac 02:00:00:00:fa:00 is on port 'ktw-sw1:et-0/0/1' of member 'AS64500' and on port "
        "'waw-sw1:et-0/0/7' of member 'AS64501'; a mac identifies one member: fix the mac on one of the ports"
    )


def test_a_mac_on_two_ports_of_one_member_needs_one_bundle() -> None:
    # give port 2 to AS64500 with port 1's MAC: one member, one vlan, same time -> refused
    second = (
        'member = "AS64501"\nmacs = ["02:00:00:00:fb:01"]',
        'member = "AS64500"\nmacs = ["02:00:00:00:fa:00"]',
    )
    assert only_problem(edited(second)) == (
        "exchange.toml: mac 02:00:00:00:fa:00 is on ports 'ktw-sw1:et-0/0/1' and "
        "'waw-sw1:et-0/0/7' of member "
        "'AS64500' in vlan 100 at the same time; give both ports the same bundle if they are one lag, "
        "or set disconnected on the old port"
    )
    # the same two ports as links of one LAG: accepted (a LAG sends from one router MAC on every link)
    bundled = edited(
        second,
        ('bundle = ""', 'bundle = "lag-1"'),
        ("connected = 2024-01-01\n", 'connected = 2024-01-01\nbundle = "lag-1"\n'),
    )
    ex = loads_exchange(bundled, source=SRC)
    assert {p.bundle for p in ex.ports} == {"lag-1"}
    # a port upgrade keeping the router: the old port left service before the new one started
    moved = edited(
        second,
        ("connected = 2024-03-15", "connected = 2024-06-01"),
        ("connected = 2024-01-01\n", "connected = 2024-01-01\ndisconnected = 2024-06-01\n"),
    )
    assert len(loads_exchange(moved, source=SRC).ports) == 2
    # different VLANs are different keys of the MAC table
    other_vlan = edited(
        second,
        (
            'vlan = 100\nmember = "AS64500"\nmacs = ["02:00:00:00:fa:00"]\nipv4 = ["192.0.2.11"]',
            'vlan = 200\nmember = "AS64500"\nmacs = ["02:00:00:00:fa:00"]\nipv4 = ["192.0.2.11"]',
        ),
    )
    assert loads_exchange(other_vlan, source=SRC).ports[1].vlan == 200


def test_a_port_on_an_unknown_switch() -> None:
    text = edited(
        ('switch = "waw-sw1"\ninterface = "et-0/0/7"', 'switch = "waw-sw9"\ninterface = "et-0/0/7"')
    )
    assert only_problem(text) == (
        "exchange.toml: port 'waw-sw9:et-0/0/7' is on switch 'waw-sw9', which is not in [[switches]]; "
        "add the switch or fix the port"
    )


def test_an_unknown_currency() -> None:
    text = edited(('currency = "PLN"\npercentile', 'currency = "pln"\npercentile'))
    assert only_problem(text) == (
        "exchange.toml: transit contract 'arelion-2026' has unknown currency 'pln'; "
        "use one of CHF, CZK, EUR, GBP, PLN, USD (write it in upper case: 'PLN')"
    )
    text = edited(('currency = "PLN"\nvat_rate', 'currency = "XBT"\nvat_rate'))
    assert only_problem(text) == (
        "exchange.toml: [billing] has unknown currency 'XBT'; use one of CHF, CZK, EUR, GBP, PLN, USD"
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ('macs = ["02:00:00:00:fb:01"]', 'macs = ["02:00:00:00:fb"]'),
            "port 'waw-sw1:et-0/0/7' has macs entry \"02:00:00:00:fb\", which is not a mac address; "
            'write e.g. "02:00:00:00:fa:00"',
        ),
        (
            ('macs = ["02:00:00:00:fb:01"]', 'macs = ["01:00:5e:00:00:01"]'),
            "port 'waw-sw1:et-0/0/7' has macs entry \"01:00:5e:00:00:01\", a "
            "multicast/broadcast mac address; "
            "write the router's unicast mac address",
        ),
        (
            ('ipv4 = ["192.0.2.11"]', 'ipv4 = ["192.0.2.311"]'),
            "port 'waw-sw1:et-0/0/7' has ipv4 entry \"192.0.2.311\", which is not an ipv4 address",
        ),
        (
            ('ipv4 = ["192.0.2.11"]', 'ipv4 = ["2001:db8::11"]'),
            "port 'waw-sw1:et-0/0/7' has ipv4 entry \"2001:db8::11\", an ipv6 address; list it under ipv6",
        ),
        (
            ('"203.0.113.0/24"', '"203.0.113.1/24"'),
            "member 'AS64501' has prefixes entry \"203.0.113.1/24\" with host bits set; "
            'write "203.0.113.0/24"',
        ),
        (
            ('flow_exporter_address = "10.255.1.1"', 'flow_exporter_address = "10.255.1"'),
            "border router 'ktw-br1' has flow_exporter_address = \"10.255.1\", which is not an ip address; "
            'write e.g. flow_exporter_address = "192.0.2.1"',
        ),
    ],
)
def test_malformed_macs_addresses_and_prefixes(edit: tuple[str, str], message: str) -> None:
    assert only_problem(edited(edit)) == f"exchange.toml: {message}"


def test_duplicate_ids_and_ifindexes() -> None:
    text = edited(('id = "AS64501"\nasn = 64501', 'id = "AS64500"\nasn = 64500'))
    assert problems_of(text)[0] == (
        "exchange.toml: member 'AS64500' is defined twice; give each [[members]] entry its own id"
    )
    text = edited(
        (
            'switch = "waw-sw1"\ninterface = "et-0/0/7"\nifindex = 1007',
            'switch = "ktw-sw1"\ninterface = "et-0/0/7"\nifindex = 1001',
        )
    )
    assert only_problem(text) == (
        "exchange.toml: port 'ktw-sw1:et-0/0/7' has ifindex 1001, already used by port 'ktw-sw1:et-0/0/1' "
        "on switch 'ktw-sw1'; each interface of a device has its own ifindex"
    )


def test_money_written_as_a_float() -> None:
    text = edited(('monthly_fee = "900.00"', "monthly_fee = 900.00"))
    assert only_problem(text) == (
        "exchange.toml: port fee for 10000 mbps has monthly_fee = 900.0, a toml float, which is not exact; "
        'write amounts as strings: monthly_fee = "900.0"'
    )


def test_zero_and_negative_speeds_and_commits() -> None:
    text = edited(
        ('commit_mbps = "20000"', 'commit_mbps = "0"'),
        ("speed_mbps = 100000\n\n[[transit", "speed_mbps = -1\n\n[[transit"),
    )
    assert problems_of(text) == [
        "exchange.toml: border router port 'ktw-br1:xe-0/0/0' has speed_mbps = -1; it must be positive",
        "exchange.toml: transit contract 'arelion-2026' has commit_mbps = \"0\"; it must "
        "be greater than zero",
    ]
    # a port of speed 0 is refused once (no second complaint about a missing fee for speed 0)
    text = edited(("speed_mbps = 1000\nvlan", "speed_mbps = 0\nvlan"))
    assert (
        only_problem(text) == "exchange.toml: port 'waw-sw1:et-0/0/7' has speed_mbps = 0; it must be positive"
    )


def test_unknown_site_and_snmp_profile() -> None:
    text = edited(
        (
            'site = "WAW"\nmanagement_address = "127.0.0.1"\nsnmp = "v3"',
            'site = "GDN"\nmanagement_address = "127.0.0.1"\nsnmp = "v4"',
        )
    )
    assert problems_of(text) == [
        "exchange.toml: switch 'waw-sw1' names site 'GDN', which is not in [[sites]]; "
        "add the site or fix the switch",
        "exchange.toml: switch 'waw-sw1' names snmp profile 'v4', which is not defined (default, v3); "
        "add [snmp.v4] or fix the name",
    ]


def test_snmp_secrets_written_inline_are_refused() -> None:
    text = edited(('community_env = "PEERPOOL_SNMP_COMMUNITY"', 'community = "public"'))
    assert problems_of(text) == [
        "exchange.toml: snmp profile 'default' writes the secret 'community' inline; secrets never go in the "
        "file: remove it, put the value in an environment variable and name it with "
        'community_env = "PEERPOOL_SNMP_..."',
        "exchange.toml: snmp profile 'default' uses snmp v2c but has no community_env; add community_env = "
        '"PEERPOOL_SNMP_COMMUNITY"',
    ]
    text = edited(('priv_key_env = "PEERPOOL_SNMP_PRIV_KEY"', 'priv_key = "hunter2hunter2"'))
    found = problems_of(text)
    assert found[0].startswith("exchange.toml: snmp profile 'v3' writes the secret 'priv_key' inline")
    assert "priv_key_env" in found[0]
    assert all("hunter2" not in p for p in found)  # the secret itself is never echoed
    # a value where a variable name belongs is most likely the secret itself
    text = edited(('auth_key_env = "PEERPOOL_SNMP_AUTH_KEY"', 'auth_key_env = "s3cret!"'))
    assert problems_of(text)[0].startswith(
        "exchange.toml: snmp profile 'v3' has auth_key_env = \"s3cret!\", which is not "
        "an environment variable name"
    )


def test_contract_checks() -> None:
    text = edited(
        ('ports = ["ktw-br1:xe-0/0/0"]', 'ports = ["ktw-br1:xe-0/0/1"]'),
        ("percentile = 95", "percentile = 0"),
        ('direction_rule = "max"', 'direction_rule = "maximum"'),
        ('gap_policy = "exclude"', 'gap_policy = "skip"'),
        ('billing_timezone = "Europe/Warsaw"', 'billing_timezone = "Europe/Warszawa"'),
    )
    assert problems_of(text) == [
        "exchange.toml: transit contract 'arelion-2026' names port 'ktw-br1:xe-0/0/1', which is not a "
        "[[border_routers.ports]] entry ('<router>:<interface>'); add the port to its "
        "border router or fix the contract",
        "exchange.toml: transit contract 'arelion-2026' has percentile = 0; it must be between 1 and 100",
        "exchange.toml: transit contract 'arelion-2026' has unknown direction_rule 'maximum'; use one of "
        "max, sum, in, out; did you mean 'max'?",
        "exchange.toml: transit contract 'arelion-2026' has unknown time zone "
        "'Europe/Warszawa'; use an iana name "
        'such as "Europe/Warsaw"',
        "exchange.toml: transit contract 'arelion-2026' has unknown gap_policy 'skip'; "
        "use one of exclude, zero",
    ]
    assert "percentile = 101; it must be between 1 and 100" in only_problem(
        edited(("percentile = 95", "percentile = 101"))
    )


def test_dates_in_the_wrong_order() -> None:
    text = edited(
        ("connected = 2024-03-15", "connected = 2024-03-15\ndisconnected = 2024-03-14"),
        ("joined = 2024-01-01", "joined = 2024-01-01\nleft = 2023-12-31"),
    )
    assert problems_of(text) == [
        "exchange.toml: member 'AS64500' left (2023-12-31) before it joined "
        "(2024-01-01); fix one of the dates",
        "exchange.toml: port 'waw-sw1:et-0/0/7' was disconnected (2024-03-14) before it was connected "
        "(2024-03-15); fix one of the dates",
    ]


def test_port_fees_must_cover_every_port_speed() -> None:
    text = edited(('[[port_fees]]\nspeed_mbps = 1000\nmonthly_fee = "300.00"\n\n', ""))
    assert only_problem(text) == (
        "exchange.toml: port 'waw-sw1:et-0/0/7' runs at 1000 mbps, which has no [[port_fees]] entry; "
        'add [[port_fees]] speed_mbps = 1000 monthly_fee = "..."'
    )


def test_typos_are_reported_with_the_closest_key() -> None:
    text = edited(
        ("sampling_rate = 16384\n\n[[switches]]", "sampling_rte = 16384\n\n[[switches]]"),
        ("[[one_off_fees]]", "[[one_of_fees]]"),
    )
    assert problems_of(text) == [
        "exchange.toml: unknown table 'one_of_fees'; did you mean 'one_off_fees'?",
        "exchange.toml: switch 'ktw-sw1' has an unknown key 'sampling_rte'; did you mean 'sampling_rate'?",
    ]


def test_all_problems_are_reported_at_once() -> None:
    text = edited(
        (PORT1, 'member = "AS64512"\nmacs = ["02:00:00:00:fa:00"]'),
        ('switch = "waw-sw1"\ninterface = "et-0/0/7"', 'switch = "waw-sw9"\ninterface = "et-0/0/7"'),
        ('currency = "PLN"\npercentile', 'currency = "XYZ"\npercentile'),
        ('price_per_mbps = "0.80"', "price_per_mbps = 0.80"),
    )
    with pytest.raises(ConfigProblems) as info:
        loads_exchange(text, source=SRC)
    message = str(info.value)
    lines = message.splitlines()
    assert lines[0] == "exchange.toml: 4 problems in the exchange configuration"
    assert len(lines) == 5 and lines[1:] == info.value.problems
    assert "names member 'AS64512'" in lines[1] and "is on switch 'waw-sw9'" in lines[2]
    assert "price_per_mbps = 0.8, a toml float" in lines[3] and "unknown currency 'XYZ'" in lines[4]


# --- CLI ----------------------------------------------------------------------------------------
def test_cli_show_prints_the_configuration_but_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERPOOL_SNMP_COMMUNITY", "s3cr3t-community")
    monkeypatch.delenv("PEERPOOL_SNMP_AUTH_KEY", raising=False)
    result = CliRunner().invoke(cli, ["config", "show", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "s3cr3t-community" not in out
    assert "PEERPOOL_SNMP_COMMUNITY (set)" in out and "PEERPOOL_SNMP_AUTH_KEY (NOT SET)" in out
    assert "AS64501  64501  Hosting Co" in out
    assert "arelion-2026  Arelion   ktw-br1:xe-0/0/0  20000        0.80 PLN" in out
    assert "10000       900.00 PLN" in out


def test_cli_show_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERPOOL_SNMP_COMMUNITY", "s3cr3t-community")
    monkeypatch.setenv("PEERPOOL_CONFIG", str(EXAMPLE))
    result = CliRunner().invoke(cli, ["config", "show", "--json"])
    assert result.exit_code == 0, result.output
    assert "s3cr3t-community" not in result.output
    data = json.loads(result.stdout)
    assert data["transit_contracts"][0]["price_per_mbps"] == "0.80"
    assert data["switches"][0]["snmp"]["community_env"] == "PEERPOOL_SNMP_COMMUNITY"
    assert data["switches"][0]["snmp"]["community_env_is_set"] is True
    assert data["ports"][1]["macs"] == ["02:00:00:00:fb:01"]
    assert data["members"][0]["joined"] == "2024-01-01"


def test_cli_check(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["config", "check", str(EXAMPLE)])
    assert result.exit_code == 0
    assert (
        "ok: 2 sites, 2 switches, 2 members, 2 ports, 1 border routers, 1 transit contracts, 3 port fees"
        in (result.stdout)
    )
    bad = tmp_path / "exchange.toml"
    bad.write_text(
        edited(
            (PORT1, 'member = "AS64512"\nmacs = ["02:00:00:00:fa:00"]'),
            ('currency = "PLN"\npercentile', 'currency = "XYZ"\npercentile'),
        ),
        "utf-8",
    )
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2  # ConfigError.exit_code
    assert result.stderr.startswith(f"error: {bad}: 2 problems in the exchange configuration\n")
    assert f"{bad}: port 'ktw-sw1:et-0/0/1' names member 'AS64512'" in result.stderr
    assert f"{bad}: transit contract 'arelion-2026' has unknown currency 'XYZ'" in result.stderr
    result = CliRunner().invoke(cli, ["config", "check", str(tmp_path / "missing.toml")])
    assert result.exit_code == 3 and "configuration file not found" in result.stderr


def test_cli_check_uses_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEERPOOL_CONFIG", str(EXAMPLE))
    result = CliRunner().invoke(cli, ["config", "check"])
    assert result.exit_code == 0 and f"{EXAMPLE}: ok" in result.stdout


def test_ids_with_spaces_are_refused() -> None:
    text = edited(('id = "ktw-sw1"', 'id = "ktw sw1"'), ('switch = "ktw-sw1"', 'switch = "ktw sw1"'))
    assert only_problem(text) == (
        "exchange.toml: switch 'ktw sw1' has id 'ktw sw1' with characters that break references; "
        "use letters, digits and . _ / - (no spaces or colons)"
    )


WRONG_VALUES = (
    "[]",
    "0",
    "-5",
    "1.5",
    "true",
    '""',
    '"x y"',
    "2024-01-01",
    "2024-01-01T00:00:00",
    "{ a = 1 }",
)


def test_any_wrong_value_is_a_config_problem_never_a_crash() -> None:
    """Every `key = value` line of the example, given each wrong value in turn: the loader either
    accepts it or raises ConfigProblems; nothing else (no TypeError, KeyError, ...) escapes."""
    lines = example_text().splitlines()
    tried = refused = 0
    for n, line in enumerate(lines):
        if "=" not in line or line.lstrip().startswith(("#", "[")):
            continue
        key = line.split("=", 1)[0].strip()
        for value in WRONG_VALUES:
            text = "\n".join([*lines[:n], f"{key} = {value}", *lines[n + 1 :]])
            tried += 1
            try:
                loads_exchange(text, source=SRC)
            except ConfigProblems as exc:
                refused += 1
                assert exc.problems and all(p.startswith("exchange.toml: ") for p in exc.problems)
    # the example has 100 `key = value` lines (counted with grep); nearly every wrong value is refused
    assert tried == 100 * len(WRONG_VALUES)
    assert refused > 0.9 * tried, (refused, tried)
