"""Typed reading of one TOML table, collecting problems instead of stopping at the first.

The loader reads every entry of ``exchange.toml`` through an :class:`Entry`. Each reader
returns a usable value or a neutral fallback (``""``, ``0``, ``None``) and records a
problem naming the entry and the fix, so one pass reports every error of a file. Checks
that compare entries skip fallback values, so one mistake is reported once.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

_MAC_COLON = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")
_MAC_DOTTED = re.compile(r"^[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}\.[0-9a-fA-F]{4}$")
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")


class Problems:
    """Every problem found in one file, each line prefixed with the file name."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, message: str) -> None:
        self.items.append(f"{self.source}: {message}")

    def __bool__(self) -> bool:
        return bool(self.items)


def closest(word: str, choices: Iterable[str]) -> str:
    """A 'did you mean' hint for ``word``, or the list of valid choices when nothing is close."""
    options = sorted(choices)
    near = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if near:
        return f"did you mean '{near[0]}'?"
    return "valid keys are: " + ", ".join(options)


def normalise_mac(text: str) -> str | None:
    """``02:00:00:00:fa:00`` from the usual spellings (colons, dashes, Cisco dots), else None."""
    if _MAC_COLON.match(text):
        digits = re.sub(r"[:-]", "", text)
    elif _MAC_DOTTED.match(text):
        digits = text.replace(".", "")
    else:
        return None
    digits = digits.lower()
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def _toml_type(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dt.datetime):
        return "a date-time"
    if isinstance(value, dt.date):
        return "a date"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def _quoted(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


class Entry:
    """One TOML table (``[billing]``, one ``[[ports]]`` entry, ...) read with its label for messages."""

    def __init__(
        self,
        problems: Problems,
        label: str,
        table: Mapping[str, Any],
        allowed: Sequence[str],
    ) -> None:
        self.problems = problems
        self.label = label
        self.table = table
        self.allowed = tuple(allowed)
        self.ok = True

    def check_keys(self, hints: Mapping[str, str] | None = None) -> None:
        """Report keys that are not part of the format, with the closest valid key."""
        for key in self.table:
            if key in self.allowed:
                continue
            hint = (hints or {}).get(key) or closest(key, self.allowed)
            self.fail(f"has an unknown key '{key}'; {hint}")

    def fail(self, message: str) -> None:
        self.ok = False
        self.problems.add(f"{self.label} {message}")

    def _missing(self, key: str, example: str) -> None:
        self.fail(f"has no '{key}'; add {key} = {example}")

    def _wrong_type(self, key: str, value: object, wanted: str, example: str) -> None:
        self.fail(f"{key} is {_toml_type(value)} ({_quoted(value)}); write {wanted}, e.g. {key} = {example}")

    # --- scalars -------------------------------------------------------------------
    def text(self, key: str, *, required: bool = False, default: str = "", example: str = '"..."') -> str:
        if key not in self.table:
            if required:
                self._missing(key, example)
            return default
        value = self.table[key]
        if not isinstance(value, str):
            self._wrong_type(key, value, "a string", example)
            return default
        if required and not value.strip():
            self.fail(f"has an empty {key}; write {key} = {example}")
        return value

    def integer(
        self,
        key: str,
        *,
        required: bool = False,
        default: int = 0,
        minimum: int | None = None,
        maximum: int | None = None,
        example: str = "1",
        what: str = "",
    ) -> int:
        if key not in self.table:
            if required:
                self._missing(key, example)
            return default
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong_type(key, value, "an integer", example)
            return default
        low_ok = minimum is None or value >= minimum
        high_ok = maximum is None or value <= maximum
        if not (low_ok and high_ok):
            if minimum is not None and maximum is not None:
                bounds = f"between {minimum} and {maximum}"
            elif minimum is not None:
                bounds = "positive" if minimum == 1 else f"at least {minimum}"
            else:
                bounds = f"at most {maximum}"
            extra = f" ({what})" if what else ""
            self.fail(f"has {key} = {value}; it must be {bounds}{extra}")
            return default
        return int(value)

    def number(self, key: str, *, default: float, minimum: float, example: str) -> float:
        """A non-money quantity such as a timeout: integer or float."""
        if key not in self.table:
            return default
        value = self.table[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._wrong_type(key, value, "a number", example)
            return default
        if value < minimum:
            self.fail(f"has {key} = {value}; it must be at least {minimum}")
            return default
        return float(value)

    def decimal(
        self,
        key: str,
        *,
        required: bool = False,
        default: Decimal | None = None,
        positive: bool = False,
        non_negative: bool = True,
        maximum: Decimal | None = None,
        example: str = '"0.00"',
    ) -> Decimal | None:
        """An exact amount (money, a rate, a commit) written as a string; floats are refused."""
        if key not in self.table:
            if required:
                self._missing(key, example)
            return default
        value = self.table[key]
        if isinstance(value, float):
            self.fail(
                f"has {key} = {value!r}, a toml float, which is not exact; "
                f'write amounts as strings: {key} = "{value!r}"'
            )
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            self._wrong_type(key, value, "a decimal string", example)
            return None
        try:
            amount = Decimal(value) if isinstance(value, int) else Decimal(value.strip())
        except InvalidOperation:
            self.fail(f'has {key} = "{value}", which is not a decimal number; write e.g. {key} = {example}')
            return None
        if not amount.is_finite():
            self.fail(f'has {key} = "{value}"; it must be a finite number, e.g. {key} = {example}')
            return None
        if positive and amount <= 0:
            self.fail(f'has {key} = "{value}"; it must be greater than zero')
            return None
        if non_negative and amount < 0:
            self.fail(f'has {key} = "{value}"; it must not be negative')
            return None
        if maximum is not None and amount > maximum:
            self.fail(f'has {key} = "{value}"; it must be at most {maximum}')
            return None
        return amount

    def date(
        self, key: str, *, required: bool = False, default: dt.date | None = None, example: str = "2024-01-01"
    ) -> dt.date | None:
        if key not in self.table:
            if required:
                self._missing(key, example)
            return default
        value = self.table[key]
        if isinstance(value, dt.datetime):
            self.fail(f"has {key} = {value.isoformat()}, a date-time; write a date: {key} = {value.date()}")
            return default
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            try:
                parsed = dt.date.fromisoformat(value)
            except ValueError:
                parsed = None
            if parsed is not None:
                self.fail(f'has {key} = "{value}", a string; write the date without quotes: {key} = {value}')
                return default
        self._wrong_type(key, value, "a toml date", example)
        return default

    def choice(self, key: str, choices: Iterable[str], *, default: str, what: str = "") -> str:
        options = tuple(choices)
        if key not in self.table:
            return default
        value = self.table[key]
        if not isinstance(value, str):
            self._wrong_type(key, value, "a string", f'"{options[0]}"')
            return default
        if value not in options:
            hint = difflib.get_close_matches(value, options, n=1, cutoff=0.5)
            mean = f"; did you mean '{hint[0]}'?" if hint else ""
            self.fail(f"has unknown {what or key} '{value}'; use one of {', '.join(options)}{mean}")
            return default
        return value

    def string_list(self, key: str, *, required: bool = False, example: str = '["..."]') -> list[str]:
        if key not in self.table:
            if required:
                self._missing(key, example)
            return []
        value = self.table[key]
        if isinstance(value, str):
            self.fail(f'has {key} = "{value}", a string; write a list: {key} = ["{value}"]')
            return []
        if not isinstance(value, list):
            self._wrong_type(key, value, "a list of strings", example)
            return []
        out: list[str] = []
        for item in value:
            if not isinstance(item, str):
                self.fail(f"has {key} containing {_toml_type(item)} ({_quoted(item)}); write strings only")
                continue
            out.append(item)
        return out

    # --- network values -----------------------------------------------------------
    def address(self, key: str, *, required: bool = False, example: str = '"192.0.2.1"') -> str:
        text = self.text(key, required=required, example=example)
        if not text:
            return ""
        try:
            return str(ipaddress.ip_address(text))
        except ValueError:
            self.fail(f'has {key} = "{text}", which is not an ip address; write e.g. {key} = {example}')
            return ""

    def addresses(self, key: str, version: int, example: str) -> tuple[str, ...]:
        out: list[str] = []
        for text in self.string_list(key, example=f"[{example}]"):
            try:
                addr = ipaddress.ip_address(text)
            except ValueError:
                hint = " (write the address without a prefix length)" if "/" in text else ""
                self.fail(f'has {key} entry "{text}", which is not an ipv{version} address{hint}')
                continue
            if addr.version != version:
                self.fail(
                    f'has {key} entry "{text}", an ipv{addr.version} address; list it under ipv{addr.version}'
                )
                continue
            out.append(str(addr))
        return tuple(out)

    def prefixes(self, key: str) -> tuple[str, ...]:
        out: list[str] = []
        for text in self.string_list(key, example='["198.51.100.0/24"]'):
            try:
                net = ipaddress.ip_network(text, strict=True)
            except ValueError as exc:
                try:
                    loose = ipaddress.ip_network(text, strict=False)
                except ValueError:
                    self.fail(
                        f'has {key} entry "{text}", which is not an ip prefix; write e.g. "198.51.100.0/24"'
                    )
                    continue
                del exc
                self.fail(f'has {key} entry "{text}" with host bits set; write "{loose}"')
                continue
            out.append(str(net))
        return tuple(out)

    def macs(self, key: str) -> tuple[str, ...]:
        out: list[str] = []
        for text in self.string_list(key, required=True, example='["02:00:00:00:fa:00"]'):
            mac = normalise_mac(text)
            if mac is None:
                self.fail(
                    f'has {key} entry "{text}", which is not a mac address; write e.g. "02:00:00:00:fa:00"'
                )
                continue
            if mac == "00:00:00:00:00:00":
                self.fail(
                    f'has {key} entry "{text}", the all-zero mac address; write the router\'s mac address'
                )
                continue
            if int(mac[:2], 16) & 1:
                self.fail(
                    f'has {key} entry "{text}", a multicast/broadcast mac address; '
                    "write the router's unicast mac address"
                )
                continue
            if mac in out:
                self.fail(f'lists mac "{mac}" twice; remove the duplicate')
                continue
            out.append(mac)
        return tuple(out)

    def env_name(self, key: str) -> str:
        name = self.text(key, example='"PEERPOOL_SNMP_COMMUNITY"')
        if name and not ENV_NAME.match(name):
            self.fail(
                f'has {key} = "{name}", which is not an environment variable name; '
                f'{key} names the variable that holds the secret, e.g. {key} = "PEERPOOL_SNMP_COMMUNITY"'
            )
            return ""
        return name
