-- One row per port and day in the exchange's time zone: bytes, average, maximum and 95th of the
-- port's trusted intervals (the per-port companion of fct_member_traffic_daily).
with

tz as (
    select {{ exchange_timezone() }} as timezone
)

select
    traffic.port_id,
    cast(timezone(tz.timezone, traffic.interval_start) as date) as traffic_date,
    any_value(traffic.port_kind) as port_kind,
    any_value(traffic.member_id) as member_id,
    count(*) as intervals_seen,
    count(*) filter (where traffic.is_trusted) as intervals_used,
    sum(traffic.in_bytes) as in_bytes,
    sum(traffic.out_bytes) as out_bytes,
    sum(traffic.in_bytes) * 8.0 / 300 / nullif(count(traffic.in_bytes), 0) as in_avg_bps,
    sum(traffic.out_bytes) * 8.0 / 300 / nullif(count(traffic.out_bytes), 0) as out_avg_bps,
    max(traffic.in_bps) as in_max_bps,
    max(traffic.out_bps) as out_max_bps,
    {{ billing_percentile('traffic.in_bytes', 95) }} * 8.0 / 300 as in_p95_bps,
    {{ billing_percentile('traffic.out_bytes', 95) }} * 8.0 / 300 as out_p95_bps
from {{ ref('fct_port_traffic_5min') }} as traffic
cross join tz
group by all
