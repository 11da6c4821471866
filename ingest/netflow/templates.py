"""Template state shared by NetFlow v9 and IPFIX: templates, exporter state, data awaiting a template.

Templates are scoped by (exporter address, observation domain / source id, template id)
(RFC 7011 section 8, RFC 3954 section 5.2). A collector that restarts must not forget them:
exporters re-send templates only every few minutes (or, over SCTP/TCP IPFIX, never), so the
cache is saved to a JSON file with an atomic write and loaded at start.

Besides templates the cache keeps what options data taught about each exporter (sampling
rates, system init time) and the data sets that arrived before their template. Those pending
sets are bounded per template key and in total; the oldest are dropped first and counted,
so an exporter that never sends its template cannot exhaust memory.
"""

from __future__ import annotations

import base64
import json
import os
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from peerpool.errors import InputError

TemplateKey = tuple[str, int, int]  # (exporter address, observation domain / source id, template id)
DomainKey = tuple[str, int]  # (exporter address, observation domain / source id)
SamplerKey = tuple[str, int] | None  # ("selector", id) / ("sampler", id); None = exporter-wide

CACHE_FORMAT: Final = "peerpool-netflow-template-cache"
CACHE_FORMAT_VERSION: Final = 1

DEFAULT_PENDING_PER_KEY: Final = 32
DEFAULT_PENDING_TOTAL: Final = 1024
DEFAULT_PENDING_BYTES: Final = 8 * 1024 * 1024
DEFAULT_MAX_TEMPLATES: Final = 65536
# A bound on memory rather than on count: a template may legally hold thousands of fields.
# A million fields is ~70 MB of template objects; a cooperative's few dozen border routers use
# a few thousand (tens of templates of 20-60 fields each).
DEFAULT_MAX_TEMPLATE_FIELDS: Final = 1_000_000
DEFAULT_MAX_EXPORTER_STATES: Final = 4096
_MAX_INT64: Final = (1 << 63) - 1


@dataclass(frozen=True, slots=True)
class TemplateField:
    """One field specifier: element id (without the enterprise bit), length, enterprise number.

    ``enterprise`` is 0 for IANA elements. NetFlow v9 has no enterprise bit: its vendor types
    (Cisco ASA 33000+, Palo Alto 56701, ...) keep their full number and enterprise 0.
    """

    element: int
    length: int
    enterprise: int = 0


@dataclass(frozen=True, slots=True)
class Template:
    """A (data or options) template as announced by the exporter.

    ``scope_count`` is 0 for data templates; for options templates the first ``scope_count``
    fields are the scope. In NetFlow v9 scope field types are RFC 3954 scope types
    (1 system, 2 interface, ...), not information elements.
    """

    version: int  # 9 or 10
    template_id: int
    fields: tuple[TemplateField, ...]
    scope_count: int = 0
    # Options templates are flagged explicitly: NetFlow v9 options templates with a zero scope
    # length exist (Juniper SRX), so scope_count > 0 cannot tell them apart.
    is_options: bool = False

    @property
    def has_variable_length(self) -> bool:
        return any(f.length == 65535 for f in self.fields)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "template_id": self.template_id,
            "scope_count": self.scope_count,
            "options": self.is_options,
            "fields": [[f.element, f.length, f.enterprise] for f in self.fields],
        }

    @staticmethod
    def from_json(obj: dict[str, Any]) -> Template:
        fields = tuple(TemplateField(int(e), int(n), int(p)) for e, n, p in obj["fields"])
        return Template(
            version=int(obj["version"]),
            template_id=int(obj["template_id"]),
            fields=fields,
            scope_count=int(obj["scope_count"]),
            is_options=bool(obj["options"]),
        )


@dataclass(frozen=True, slots=True)
class PendingSet:
    """A data set whose template was unknown when it arrived, with what decoding it needs later."""

    key: TemplateKey
    version: int
    received_at_ns: int
    sequence: int
    export_time_s: int
    sys_uptime_ms: int  # NetFlow v9 header sysUpTime; 0 for IPFIX
    body: bytes
    order: int  # arrival order across all keys (oldest first)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": list(self.key),
            "version": self.version,
            "received_at_ns": self.received_at_ns,
            "sequence": self.sequence,
            "export_time_s": self.export_time_s,
            "sys_uptime_ms": self.sys_uptime_ms,
            "body": base64.b64encode(self.body).decode("ascii"),
        }


@dataclass
class ExporterState:
    """What options data said about one (exporter, domain): sampling rates and system init time."""

    sampling: dict[SamplerKey, int] = field(default_factory=dict)
    system_init_ms: int | None = None


class TemplateCache:
    """Templates, exporter state and pending data, keyed by exporter, domain and template id."""

    def __init__(
        self,
        *,
        max_pending_per_key: int = DEFAULT_PENDING_PER_KEY,
        max_pending_total: int = DEFAULT_PENDING_TOTAL,
        max_pending_bytes: int = DEFAULT_PENDING_BYTES,
        max_templates: int = DEFAULT_MAX_TEMPLATES,
        max_template_fields: int = DEFAULT_MAX_TEMPLATE_FIELDS,
        max_exporter_states: int = DEFAULT_MAX_EXPORTER_STATES,
    ) -> None:
        limits = (
            max_pending_per_key,
            max_pending_total,
            max_pending_bytes,
            max_templates,
            max_template_fields,
        )
        if min(*limits, max_exporter_states) < 0:
            raise ValueError("cache limits must not be negative")
        self.max_templates = max_templates
        self.max_template_fields = max_template_fields
        self.max_exporter_states = max_exporter_states
        self._field_count = 0
        self.max_pending_per_key = max_pending_per_key
        self.max_pending_total = max_pending_total
        self.max_pending_bytes = max_pending_bytes
        self._templates: dict[TemplateKey, Template] = {}
        self._exporters: dict[DomainKey, ExporterState] = {}
        self._pending: dict[TemplateKey, deque[PendingSet]] = {}
        self._pending_order: deque[tuple[int, TemplateKey]] = deque()
        self._pending_count = 0
        self._pending_bytes = 0
        self._next_order = 0
        # bumped whenever a template changes, so decoders can drop compiled layouts
        self.generation = 0
        # bumped whenever exporter state (sampling, init time) changes, so decoders can drop
        # the per-template rates they cached
        self.state_generation = 0

    # --- templates -------------------------------------------------------------------------

    def get(self, key: TemplateKey) -> Template | None:
        return self._templates.get(key)

    @property
    def template_map(self) -> dict[TemplateKey, Template]:
        """The live template dict, for the decoder's hot path; change it only through put/withdraw."""
        return self._templates

    def put(self, key: TemplateKey, template: Template) -> bool:
        """Store a template; True when it is new or differs from the one it replaces.

        Raises OverflowError when the cache already holds ``max_templates`` templates and this
        key is new (a bound against exporters, or spoofed sources, inventing template ids).
        """
        old = self._templates.get(key)
        if old == template:
            return False
        if old is None and len(self._templates) >= self.max_templates:
            raise OverflowError(f"template cache full ({self.max_templates} templates)")
        fields = self._field_count - (len(old.fields) if old is not None else 0) + len(template.fields)
        if fields > self.max_template_fields:
            raise OverflowError(f"template cache full ({self.max_template_fields} fields)")
        self._templates[key] = template
        self._field_count = fields
        self.generation += 1
        return True

    def withdraw(self, key: TemplateKey) -> bool:
        """Forget one template (IPFIX withdrawal); True when it existed."""
        old = self._templates.pop(key, None)
        if old is None:
            return False
        self._field_count -= len(old.fields)
        self.generation += 1
        return True

    def withdraw_all(self, exporter: str, domain: int, *, options: bool) -> int:
        """Forget every data (or options) template of one exporter and domain (RFC 7011 section 8.1)."""
        doomed = [
            k
            for k, t in self._templates.items()
            if k[0] == exporter and k[1] == domain and t.is_options == options
        ]
        for k in doomed:
            self._field_count -= len(self._templates.pop(k).fields)
        if doomed:
            self.generation += 1
        return len(doomed)

    def __len__(self) -> int:
        return len(self._templates)

    def template_keys(self) -> list[TemplateKey]:
        return list(self._templates)

    # --- exporter state --------------------------------------------------------------------

    def exporter_state(self, exporter: str, domain: int) -> ExporterState | None:
        """The state of one exporter and domain, created when missing.

        None when ``max_exporter_states`` states exist already and this one is new. The caller
        changes the state in place and must call :meth:`state_changed` afterwards.
        """
        state = self._exporters.get((exporter, domain))
        if state is None:
            if len(self._exporters) >= self.max_exporter_states:
                return None
            state = self._exporters[(exporter, domain)] = ExporterState()
            self.state_generation += 1
        return state

    def state_changed(self) -> None:
        self.state_generation += 1

    def peek_exporter_state(self, exporter: str, domain: int) -> ExporterState | None:
        return self._exporters.get((exporter, domain))

    # --- pending data ----------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return self._pending_count

    @property
    def pending_bytes(self) -> int:
        return self._pending_bytes

    def has_pending(self, key: TemplateKey) -> bool:
        return key in self._pending

    def add_pending(
        self,
        key: TemplateKey,
        version: int,
        received_at_ns: int,
        sequence: int,
        export_time_s: int,
        sys_uptime_ms: int,
        body: bytes,
    ) -> int:
        """Hold a data set until its template arrives; returns how many older sets were dropped.

        A set larger than the byte bound is dropped itself (counted as 1).
        """
        if self.max_pending_per_key == 0 or self.max_pending_total == 0 or len(body) > self.max_pending_bytes:
            return 1
        dropped = 0
        queue = self._pending.get(key)
        if queue is not None and len(queue) >= self.max_pending_per_key:
            self._drop(queue.popleft())
            dropped += 1
        while self._pending_count >= self.max_pending_total or (
            self._pending_bytes + len(body) > self.max_pending_bytes and self._pending_count
        ):
            if self._drop_oldest():
                dropped += 1
        entry = PendingSet(
            key,
            version,
            received_at_ns,
            sequence,
            export_time_s,
            sys_uptime_ms,
            bytes(body),
            self._next_order,
        )
        self._next_order += 1
        queue = self._pending.get(key)
        if queue is None:
            queue = self._pending[key] = deque()
        queue.append(entry)
        self._pending_order.append((entry.order, key))
        self._pending_count += 1
        self._pending_bytes += len(entry.body)
        if len(self._pending_order) > 4 * max(self.max_pending_total, 16):
            self._compact_order()
        return dropped

    def take_pending(self, key: TemplateKey) -> list[PendingSet]:
        """Remove and return (oldest first) the sets waiting for this template."""
        queue = self._pending.pop(key, None)
        if not queue:
            return []
        for entry in queue:
            self._pending_count -= 1
            self._pending_bytes -= len(entry.body)
        return list(queue)

    def pending_keys(self) -> list[TemplateKey]:
        return list(self._pending)

    def _drop(self, entry: PendingSet) -> None:
        # the caller already removed it from its per-key queue
        self._pending_count -= 1
        self._pending_bytes -= len(entry.body)
        queue = self._pending.get(entry.key)
        if queue is not None and not queue:
            del self._pending[entry.key]

    def _drop_oldest(self) -> bool:
        """Drop the globally oldest pending set; False when only stale order entries were left."""
        while self._pending_order:
            order, key = self._pending_order.popleft()
            queue = self._pending.get(key)
            if queue and queue[0].order == order:
                self._drop(queue.popleft())
                return True
        # nothing left to drop: counters must agree
        self._pending_count = 0
        self._pending_bytes = 0
        self._pending.clear()
        return False

    def _compact_order(self) -> None:
        live = sorted((e.order, e.key) for q in self._pending.values() for e in q)
        self._pending_order = deque(live)

    # --- persistence -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        templates = [
            {"exporter": k[0], "domain": k[1], **t.to_json()} for k, t in sorted(self._templates.items())
        ]
        exporters = []
        for (exporter, domain), state in sorted(self._exporters.items()):
            exporters.append(
                {
                    "exporter": exporter,
                    "domain": domain,
                    "system_init_ms": state.system_init_ms,
                    "sampling": [
                        {"sampler": None if s is None else list(s), "rate": r}
                        for s, r in sorted(state.sampling.items(), key=lambda kv: repr(kv[0]))
                    ],
                }
            )
        pending = sorted((e for q in self._pending.values() for e in q), key=lambda e: e.order)
        return {
            "format": CACHE_FORMAT,
            "format_version": CACHE_FORMAT_VERSION,
            "templates": templates,
            "exporters": exporters,
            "pending": [e.to_json() for e in pending],
        }

    def save(self, path: Path | str) -> None:
        """Write the cache as JSON atomically (temp file in the same directory, fsync, rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        data = json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True).encode()
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)  # make the rename itself durable
            finally:
                os.close(directory)
        finally:
            if tmp.exists():
                tmp.unlink()

    @classmethod
    def load(
        cls,
        path: Path | str,
        *,
        max_pending_per_key: int = DEFAULT_PENDING_PER_KEY,
        max_pending_total: int = DEFAULT_PENDING_TOTAL,
        max_pending_bytes: int = DEFAULT_PENDING_BYTES,
        max_templates: int = DEFAULT_MAX_TEMPLATES,
        max_template_fields: int = DEFAULT_MAX_TEMPLATE_FIELDS,
        max_exporter_states: int = DEFAULT_MAX_EXPORTER_STATES,
    ) -> TemplateCache:
        """Read a cache written by :meth:`save`; a damaged file raises InputError naming it."""
        path = Path(path)
        try:
            raw = json.loads(path.read_bytes())
        except OSError as exc:
            raise InputError(
                f"{path}: cannot read the template cache ({exc.strerror}); check the path"
            ) from exc
        except ValueError as exc:
            raise InputError(
                f"{path}: the template cache is not valid json ({exc}); move it away to start with an "
                "empty cache (exporters re-send their templates)"
            ) from exc
        cache = cls(
            max_pending_per_key=max_pending_per_key,
            max_pending_total=max_pending_total,
            max_pending_bytes=max_pending_bytes,
            max_templates=max_templates,
            max_template_fields=max_template_fields,
            max_exporter_states=max_exporter_states,
        )
        try:
            cache._fill(raw)
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise InputError(
                f"{path}: the template cache has an unexpected layout ({exc!r}); move it away to start "
                "with an empty cache (exporters re-send their templates)"
            ) from exc
        return cache

    def _fill(self, raw: Any) -> None:
        if not isinstance(raw, dict):
            raise ValueError(f"top level is {type(raw).__name__}, not an object")
        if raw.get("format") != CACHE_FORMAT or raw.get("format_version") != CACHE_FORMAT_VERSION:
            raise ValueError(f"format {raw.get('format')!r} version {raw.get('format_version')!r}")
        for obj in raw["templates"]:
            key = (str(obj["exporter"]), int(obj["domain"]), int(obj["template_id"]))
            try:
                self.put(key, Template.from_json(obj))
            except OverflowError as exc:
                raise ValueError(f"{exc}: raise the cache limits to load this file") from exc
        for obj in raw["exporters"]:
            state = self.exporter_state(str(obj["exporter"]), int(obj["domain"]))
            if state is None:
                raise ValueError(f"more than {self.max_exporter_states} exporter states")
            init = obj["system_init_ms"]
            state.system_init_ms = None if init is None else int(init)
            for item in obj["sampling"]:
                sampler = item["sampler"]
                skey: SamplerKey = None if sampler is None else (str(sampler[0]), int(sampler[1]))
                rate = int(item["rate"])
                if not 1 <= rate <= _MAX_INT64:
                    raise ValueError(f"sampling rate {rate} of {obj['exporter']} is not from 1 to 2**63 - 1")
                state.sampling[skey] = rate
        self.state_generation += 1
        for obj in raw["pending"]:
            key_list = obj["key"]
            numbers = {
                name: int(obj[name])
                for name in ("version", "received_at_ns", "sequence", "export_time_s", "sys_uptime_ms")
            }
            if numbers["version"] not in (9, 10) or not 0 <= numbers["received_at_ns"] <= _MAX_INT64:
                raise ValueError(
                    f"pending set with version {numbers['version']}, arrival {numbers['received_at_ns']}"
                )
            for name in ("sequence", "export_time_s", "sys_uptime_ms"):
                if not 0 <= numbers[name] <= 0xFFFFFFFF:
                    raise ValueError(f"pending set with {name} {numbers[name]} (a 32-bit header field)")
            self.add_pending(
                (str(key_list[0]), int(key_list[1]), int(key_list[2])),
                numbers["version"],
                numbers["received_at_ns"],
                numbers["sequence"],
                numbers["export_time_s"],
                numbers["sys_uptime_ms"],
                base64.b64decode(obj["body"], validate=True),
            )
        self.generation += 1

    def templates(self) -> Iterable[tuple[TemplateKey, Template]]:
        return list(self._templates.items())
