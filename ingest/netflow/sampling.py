"""Sampling rate of a flow record: in-record fields, options data, configured override, or 1.

Routers announce their sampling in several ways, all seen in the real captures:

* in the flow record itself: samplingInterval (34) / samplerRandomInterval (50) (Cisco NetFlow v9,
  H3C), or PSAMP samplingPacketInterval/Space (305/306) and samplingSize/Population (309/310);
* in options data, once for the exporter (scope "system") or per sampler: the flow records then
  carry a samplerId (48, v9 FLOW_SAMPLER_ID) or selectorId (302, IPFIX PSAMP) that names it
  (Cisco IOS XR with several sampler maps: akvorado "multiplesamplingrates", pmacct 112);
* nowhere: the operator must configure it (``sampling_overrides``); without it the rate is 1 and
  the record is counted as "unknown sampling rate".

PSAMP rules (RFC 5476 section 6.5, RFC 5477): systematic count-based selection takes
``samplingPacketInterval`` packets then skips ``samplingPacketSpace``, so the rate is
(interval + space) / interval; random n-out-of-N selection keeps ``samplingSize`` of every
``samplingPopulation`` packets, rate population / size. Cisco IOS XR also fills
samplingPacketInterval with N for "1 out of N" and sends no space (pmacct test 112:
interval 256 = population 256, size 1), so an interval without a space is taken as the rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ingest.netflow import elements as ie
from ingest.netflow.templates import ExporterState, SamplerKey

MAX_SAMPLERS_PER_DOMAIN: Final = 256
MAX_RATE: Final = (1 << 63) - 1  # the lake's sampling_rate is an int64: larger is not a usable rate


def ratio(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up to an integer; 0 when it is not a usable rate."""
    if denominator <= 0 or numerator <= 0:
        return 0
    return (2 * numerator + denominator) // (2 * denominator)


def psamp_rate(values: Mapping[int, int]) -> int:
    """Rate from PSAMP / legacy sampling elements of one record (options or flow); 0 if none."""
    algorithm = values.get(ie.SELECTOR_ALGORITHM)
    population = values.get(ie.SAMPLING_POPULATION)
    size = values.get(ie.SAMPLING_SIZE)
    interval = values.get(ie.SAMPLING_PACKET_INTERVAL)
    space = values.get(ie.SAMPLING_PACKET_SPACE)
    rate = 0
    if algorithm == ie.SELECTOR_SYSTEMATIC_COUNT and interval is not None and space is not None:
        rate = ratio(interval + space, interval)
    if not rate and population is not None and size is not None:
        rate = ratio(population, size)
    if not rate and interval is not None:
        rate = ratio(interval + space, interval) if space is not None else interval
    if not rate:
        rate = values.get(ie.SAMPLER_RANDOM_INTERVAL) or 0
    if not rate:
        rate = values.get(ie.SAMPLING_INTERVAL) or 0
    return rate if 0 < rate <= MAX_RATE else 0


def sampler_key(values: Mapping[int, int]) -> SamplerKey:
    """Which sampler an options record describes: selectorId, samplerId, or the whole exporter."""
    if ie.SELECTOR_ID in values:
        return ("selector", values[ie.SELECTOR_ID])
    if ie.SAMPLER_ID in values:
        return ("sampler", values[ie.SAMPLER_ID])
    return None


def learn(state: ExporterState, values: Mapping[int, int]) -> bool:
    """Apply one options data record to the exporter state; True when it carried a sampling rate.

    Returns False (and learns nothing) when the domain already knows MAX_SAMPLERS_PER_DOMAIN
    samplers and this one is new: a bound against hostile input.
    """
    init = values.get(ie.SYSTEM_INIT_TIME_MILLISECONDS)
    if init:
        state.system_init_ms = init
    rate = psamp_rate(values)
    if not rate:
        return False
    key = sampler_key(values)
    if key not in state.sampling and len(state.sampling) >= MAX_SAMPLERS_PER_DOMAIN:
        return False
    state.sampling[key] = rate
    return True


class RateResolver:
    """The fallback chain for one data set: options data > override > 1 (counted as unknown).

    Built per set; the generated record converters call :meth:`fallback` when the record has no
    usable in-record rate and :meth:`lookup` when it names a sampler / selector. It also counts
    the values the converters leave out because the lake cannot hold them (:meth:`out_of_range`).
    """

    __slots__ = ("_default", "_override", "_state", "out_of_range_values", "unknown")

    def __init__(self, state: ExporterState | None, override: int | None) -> None:
        self._state = state
        self._override = override if override and override > 0 else None
        self._default: int | None = None  # rate of the exporter-wide chain, once computed
        self.unknown = 0  # records that fell through to rate 1
        self.out_of_range_values = 0  # values left out of rows (see ingest.netflow.layout)

    def out_of_range(self) -> None:
        """Count a value that does not fit its lake column; the converter stores None instead."""
        self.out_of_range_values += 1

    def default(self) -> tuple[int, bool]:
        """(rate, known) for a record that names no sampler."""
        state = self._state
        if state is not None and state.sampling:
            rate = state.sampling.get(None)
            if rate:
                return rate, True
            # An exporter with a single sampler often announces it by id while its flow templates
            # leave the id out: with exactly one rate known for the domain, that rate applies.
            rates = set(state.sampling.values())
            if len(rates) == 1:
                return rates.pop(), True
        if self._override is not None:
            return self._override, True
        return 1, False

    def fallback(self) -> int:
        rate = self._default
        if rate is None:
            rate, known = self.default()
            self._default = rate if known else -1
            if not known:
                self.unknown += 1
            return rate
        if rate < 0:
            self.unknown += 1
            return 1
        return rate

    def lookup(self, selector: int | None, sampler: int | None) -> int:
        state = self._state
        if state is not None:
            sampling = state.sampling
            if selector is not None:
                rate = sampling.get(("selector", selector))
                if rate:
                    return rate
            if sampler is not None:
                rate = sampling.get(("sampler", sampler))
                if rate:
                    return rate
        return self.fallback()
