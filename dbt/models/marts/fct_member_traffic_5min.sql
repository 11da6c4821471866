{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- One row per member and 5-minute interval: the sum over the member's ports (a LAG or several
-- ports are one service). in = into the exchange from the member (ports' ifIn), out = delivered
-- by the exchange to the member (ifOut). Totals come from counters; the IPv4/IPv6 split applies
-- each port's sFlow shares for that interval to its counter bytes.
with

port_rates as (
    select *
    from {{ ref('fct_port_traffic_5min') }}
    where port_kind = 'member' and {{ incremental_filter('interval_date') }}
),

shares as (
    select
        interval_start,
        port_id,
        direction,
        ipv4_estimated_bytes * 1.0 / nullif(estimated_bytes, 0) as ipv4_share,
        ipv6_estimated_bytes * 1.0 / nullif(estimated_bytes, 0) as ipv6_share
    from {{ ref('int_port_sflow_5min') }}
    where {{ incremental_filter('interval_date') }}
),

per_port as (
    select
        port_rates.member_id,
        port_rates.port_id,
        port_rates.interval_start,
        port_rates.interval_date,
        port_rates.is_trusted,
        port_rates.in_bytes,
        port_rates.out_bytes,
        port_rates.in_bytes * coalesce(in_shares.ipv4_share, 0) as in_ipv4_bytes,
        port_rates.in_bytes * coalesce(in_shares.ipv6_share, 0) as in_ipv6_bytes,
        port_rates.out_bytes * coalesce(out_shares.ipv4_share, 0) as out_ipv4_bytes,
        port_rates.out_bytes * coalesce(out_shares.ipv6_share, 0) as out_ipv6_bytes
    from port_rates
    left join shares as in_shares
        on in_shares.port_id = port_rates.port_id and in_shares.interval_start = port_rates.interval_start
       and in_shares.direction = 'in'
    left join shares as out_shares
        on out_shares.port_id = port_rates.port_id and out_shares.interval_start = port_rates.interval_start
       and out_shares.direction = 'out'
)

select
    member_id,
    interval_start,
    interval_date,
    count(*) as port_count,
    count(*) filter (where is_trusted) as ports_with_rate,
    count(*) filter (where is_trusted) = count(*) as is_complete,
    sum(in_bytes) as in_bytes,
    sum(out_bytes) as out_bytes,
    sum(in_bytes) * 8.0 / 300 as in_bps,
    sum(out_bytes) * 8.0 / 300 as out_bps,
    sum(in_ipv4_bytes) as in_ipv4_bytes,
    sum(in_ipv6_bytes) as in_ipv6_bytes,
    sum(out_ipv4_bytes) as out_ipv4_bytes,
    sum(out_ipv6_bytes) as out_ipv6_bytes
from per_port
where member_id is not null
group by member_id, interval_start, interval_date
