{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- One row per member and 5-minute interval: the sum over the member's ports (a LAG or several
-- ports are one service). in = into the exchange from the member (ports' ifIn), out = delivered
-- by the exchange to the member (ifOut). Totals come from counters; the IPv4/IPv6 split applies
-- the member's sFlow shares for that interval (as sender for in, as receiver for out) to them;
-- the split is null in an interval without samples.
with

port_rates as (
    select *
    from {{ ref('fct_port_traffic_5min') }}
    where port_kind = 'member' and member_id is not null and {{ incremental_filter('interval_date') }}
),

shares as (
    select
        interval_start,
        member_id,
        direction,
        ipv4_estimated_bytes * 1.0 / nullif(estimated_bytes, 0) as ipv4_share,
        ipv6_estimated_bytes * 1.0 / nullif(estimated_bytes, 0) as ipv6_share
    from {{ ref('int_member_sflow_5min') }}
    where {{ incremental_filter('interval_date') }}
),

per_member as (
    select
        member_id,
        interval_start,
        interval_date,
        count(*) as port_count,
        count(*) filter (where is_trusted) as ports_with_rate,
        count(*) filter (where is_trusted) = count(*) as is_complete,
        cast(sum(in_bytes) as bigint) as in_bytes,
        cast(sum(out_bytes) as bigint) as out_bytes
    from port_rates
    group by member_id, interval_start, interval_date
)

select
    per_member.member_id,
    per_member.interval_start,
    per_member.interval_date,
    per_member.port_count,
    per_member.ports_with_rate,
    per_member.is_complete,
    per_member.in_bytes,
    per_member.out_bytes,
    per_member.in_bytes * 8.0 / 300 as in_bps,
    per_member.out_bytes * 8.0 / 300 as out_bps,
    cast(round(per_member.in_bytes * in_shares.ipv4_share) as bigint) as in_ipv4_bytes,
    cast(round(per_member.in_bytes * in_shares.ipv6_share) as bigint) as in_ipv6_bytes,
    cast(round(per_member.out_bytes * out_shares.ipv4_share) as bigint) as out_ipv4_bytes,
    cast(round(per_member.out_bytes * out_shares.ipv6_share) as bigint) as out_ipv6_bytes
from per_member
left join shares as in_shares
    on in_shares.member_id = per_member.member_id and in_shares.interval_start = per_member.interval_start
   and in_shares.direction = 'in'
left join shares as out_shares
    on out_shares.member_id = per_member.member_id and out_shares.interval_start = per_member.interval_start
   and out_shares.direction = 'out'
