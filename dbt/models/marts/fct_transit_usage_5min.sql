{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- One row per transit contract and 5-minute interval of its term: bytes summed over the
-- contract's ports (the bill is the percentile of this per-interval sum, never a sum of
-- percentiles). in = from the provider (border ports' ifIn), out = towards it. Every interval
-- from the first to the last one the lake has rates for is present; `is_billable` applies the
-- contract's gap policy: 'exclude' drops an interval where any port lacks a trusted rate,
-- 'zero' keeps it with the missing ports counted as 0.
with

contracts as (
    select * from {{ ref('stg_reference__transit_contracts') }}
),

contract_ports as (
    select * from {{ ref('stg_reference__transit_contract_ports') }}
),

rates as (
    select *
    from {{ ref('int_port_rates_deduplicated') }}
    where port_id in (select port_id from contract_ports)
      and {{ incremental_filter('interval_date') }}
),

span as (
    select min(interval_start) as first_interval, max(interval_start) as last_interval from rates
),

spine as (
    select contracts.contract_id, intervals.interval_start
    from contracts
    cross join span
    cross join lateral (
        select unnest(generate_series(span.first_interval, span.last_interval, interval 5 minute)) as interval_start
    ) as intervals
    where span.first_interval is not null
      and cast(timezone(contracts.billing_timezone, intervals.interval_start) as date) >= contracts.term_start_date
      and (contracts.term_end_date is null
           or cast(timezone(contracts.billing_timezone, intervals.interval_start) as date) <= contracts.term_end_date)
),

per_interval as (
    select
        spine.contract_id,
        spine.interval_start,
        count(contract_ports.port_id) as ports_expected,
        count(rates.port_id) filter (where rates.is_trusted) as ports_with_rate,
        coalesce(sum(rates.in_bytes) filter (where rates.is_trusted), 0) as in_bytes,
        coalesce(sum(rates.out_bytes) filter (where rates.is_trusted), 0) as out_bytes
    from spine
    inner join contract_ports using (contract_id)
    left join rates
        on rates.port_id = contract_ports.port_id and rates.interval_start = spine.interval_start
    group by spine.contract_id, spine.interval_start
)

select
    per_interval.contract_id,
    per_interval.interval_start,
    cast(per_interval.interval_start as date) as interval_date,
    {{ local_month('per_interval.interval_start', 'contracts.billing_timezone') }} as billing_month,
    per_interval.in_bytes,
    per_interval.out_bytes,
    per_interval.in_bytes + per_interval.out_bytes as in_plus_out_bytes,
    per_interval.in_bytes * 8.0 / 300 as in_bps,
    per_interval.out_bytes * 8.0 / 300 as out_bps,
    per_interval.ports_expected,
    per_interval.ports_with_rate,
    per_interval.ports_with_rate = per_interval.ports_expected as is_complete,
    case contracts.gap_policy
        when 'zero' then true
        else per_interval.ports_with_rate = per_interval.ports_expected
    end as is_billable
from per_interval
inner join contracts using (contract_id)
