{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- sFlow estimate per member, interval and direction, straight from the lake's matrix: 'in' =
-- frames the member sent into the exchange (source side), 'out' = frames delivered to it
-- (destination side). The member, not its port, is the unit: a LAG's ports share one router MAC.
-- These totals scale the matrix and give the IPv4/IPv6 shares.
with

matrix as (
    select *
    from {{ ref('stg_lake__member_matrix') }}
    where {{ incremental_filter('partition_date', slack_days=1) }}
      and {{ incremental_filter('interval_date') }}
),

sent as (
    select
        interval_start,
        interval_date,
        src_member_id as member_id,
        'in' as direction,
        sum(estimated_bytes) as estimated_bytes,
        coalesce(sum(estimated_bytes) filter (where ip_version = 4), 0) as ipv4_estimated_bytes,
        coalesce(sum(estimated_bytes) filter (where ip_version = 6), 0) as ipv6_estimated_bytes,
        sum(sample_count) as sample_count
    from matrix
    where src_member_id is not null
    group by interval_start, interval_date, src_member_id
),

received as (
    select
        interval_start,
        interval_date,
        dst_member_id as member_id,
        'out' as direction,
        sum(estimated_bytes) as estimated_bytes,
        coalesce(sum(estimated_bytes) filter (where ip_version = 4), 0) as ipv4_estimated_bytes,
        coalesce(sum(estimated_bytes) filter (where ip_version = 6), 0) as ipv6_estimated_bytes,
        sum(sample_count) as sample_count
    from matrix
    where dst_member_id is not null
    group by interval_start, interval_date, dst_member_id
)

select * from sent
union all
select * from received
