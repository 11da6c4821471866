{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- One row per port (member or transit) and 5-minute interval, after counter hygiene. in/out are
-- the port's own IF-MIB directions: in = received by the exchange/border port from the attached
-- router, out = sent by the port to it. Rates are null when the interval has no trusted rate.
with

rates as (
    select *
    from {{ ref('int_port_rates_deduplicated') }}
    where {{ incremental_filter('interval_date') }}
),

ports as (
    select * from {{ ref('int_ports_unified') }}
)

select
    rates.port_id,
    rates.interval_start,
    rates.interval_date,
    coalesce(ports.port_kind, 'unknown') as port_kind,
    ports.member_id,
    coalesce(ports.device_id, rates.device_id) as device_id,
    ports.site_id,
    coalesce(rates.speed_mbps, ports.speed_mbps) as speed_mbps,
    case when rates.is_trusted then rates.in_bytes end as in_bytes,
    case when rates.is_trusted then rates.out_bytes end as out_bytes,
    case when rates.is_trusted then rates.in_bytes * 8.0 / 300 end as in_bps,
    case when rates.is_trusted then rates.out_bytes * 8.0 / 300 end as out_bps,
    case when rates.is_trusted and coalesce(rates.speed_mbps, ports.speed_mbps) > 0
        then rates.in_bytes * 8.0 / 300 / (coalesce(rates.speed_mbps, ports.speed_mbps) * 1e6) end as in_utilisation,
    case when rates.is_trusted and coalesce(rates.speed_mbps, ports.speed_mbps) > 0
        then rates.out_bytes * 8.0 / 300 / (coalesce(rates.speed_mbps, ports.speed_mbps) * 1e6) end as out_utilisation,
    rates.is_trusted,
    rates.is_gap,
    rates.is_failed_read,
    rates.is_reset,
    rates.is_wrap,
    rates.is_over_speed,
    rates.rate_source
from rates
left join ports using (port_id)
