{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- sFlow estimate per exchange port, interval and direction, from the lake's matrix. Sampling is
-- ingress on edge ports, so direction 'in' (frames the member sent into the exchange, the port's
-- ifIn) comes from the source port of each sample and 'out' (ifOut) from the destination port.
with

matrix as (
    select *
    from {{ ref('stg_lake__member_matrix') }}
    where {{ incremental_filter('partition_date', slack_days=1) }}
      and {{ incremental_filter('interval_date') }}
),

both_directions as (
    select interval_start, interval_date, src_port_id as port_id, 'in' as direction,
           ip_version, estimated_bytes, sample_count
    from matrix
    where src_port_id is not null
    union all
    select interval_start, interval_date, dst_port_id as port_id, 'out' as direction,
           ip_version, estimated_bytes, sample_count
    from matrix
    where dst_port_id is not null
)

select
    interval_start,
    interval_date,
    port_id,
    direction,
    sum(estimated_bytes) as estimated_bytes,
    sum(estimated_bytes) filter (where ip_version = 4) as ipv4_estimated_bytes,
    sum(estimated_bytes) filter (where ip_version = 6) as ipv6_estimated_bytes,
    sum(sample_count) as sample_count
from both_directions
group by all
