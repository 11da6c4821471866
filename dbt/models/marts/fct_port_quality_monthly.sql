-- Data quality per port and month (exchange time zone): how many of the month's intervals had a
-- trusted rate, and why the others did not; outage time from fct_port_outages.
with

tz as (
    select {{ exchange_timezone() }} as timezone
),

rates as (
    select rates.*, {{ local_month('rates.interval_start', 'tz.timezone') }} as month, tz.timezone
    from {{ ref('fct_port_traffic_5min') }} as rates
    cross join tz
),

per_month as (
    select
        port_id,
        month,
        any_value(port_kind) as port_kind,
        any_value(member_id) as member_id,
        cast((epoch(timezone(any_value(timezone), cast(month + interval 1 month as timestamp)))
              - epoch(timezone(any_value(timezone), cast(month as timestamp)))) / 300 as bigint) as intervals_in_month,
        count(*) as intervals_present,
        count(*) filter (where is_trusted) as intervals_trusted,
        count(*) filter (where is_gap) as intervals_gap,
        count(*) filter (where is_failed_read) as intervals_failed_read,
        count(*) filter (where is_reset) as intervals_reset,
        count(*) filter (where is_wrap) as intervals_wrap,
        count(*) filter (where is_over_speed) as intervals_over_speed
    from rates
    group by port_id, month
),

outages as (
    select
        outages.port_id,
        {{ local_month('outages.start_at', 'tz.timezone') }} as month,
        sum(outages.duration_s) filter (where outages.cause = 'oper_down') as oper_down_s,
        sum(outages.duration_s) filter (where outages.cause = 'unreachable') as unreachable_s,
        count(*) as outage_count
    from {{ ref('fct_port_outages') }} as outages
    cross join tz
    group by all
)

select
    per_month.*,
    per_month.intervals_trusted * 1.0 / nullif(per_month.intervals_in_month, 0) as trusted_ratio,
    coalesce(outages.outage_count, 0) as outage_count,
    coalesce(outages.oper_down_s, 0) as oper_down_s,
    coalesce(outages.unreachable_s, 0) as unreachable_s
from per_month
left join outages using (port_id, month)
