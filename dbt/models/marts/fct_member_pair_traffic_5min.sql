{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- The member-to-member matrix per 5-minute interval. Counters give the totals, sFlow the shares:
-- each source port's sampled estimate is scaled so that, over all its destinations (unknown MACs
-- included), it adds up to the port's counter ifIn bytes in that interval. The raw sFlow
-- estimate stays beside the scaled figure; without a trusted counter the scaled figure is null.
-- A MAC on no configured port shows as member 'unknown'.
with

matrix as (
    select *
    from {{ ref('int_member_matrix_aggregated') }}
    where {{ incremental_filter('interval_date') }}
),

port_totals as (
    select interval_start, port_id, estimated_bytes as sflow_port_bytes
    from {{ ref('int_port_sflow_5min') }}
    where direction = 'in' and {{ incremental_filter('interval_date') }}
),

counters as (
    select interval_start, port_id, in_bytes as counter_port_bytes
    from {{ ref('int_port_rates_deduplicated') }}
    where is_trusted and in_bytes is not null and {{ incremental_filter('interval_date') }}
),

scaled as (
    select
        matrix.*,
        matrix.estimated_bytes * counters.counter_port_bytes * 1.0 / nullif(port_totals.sflow_port_bytes, 0)
            as scaled_bytes
    from matrix
    left join port_totals
        on port_totals.port_id = matrix.src_port_id and port_totals.interval_start = matrix.interval_start
    left join counters
        on counters.port_id = matrix.src_port_id and counters.interval_start = matrix.interval_start
)

select
    interval_start,
    interval_date,
    coalesce(src_member_id, 'unknown') as src_member_id,
    coalesce(dst_member_id, 'unknown') as dst_member_id,
    sum(scaled_bytes) as bytes,
    sum(scaled_bytes) * 8.0 / 300 as bps,
    sum(scaled_bytes) filter (where ip_version = 4) as ipv4_bytes,
    sum(scaled_bytes) filter (where ip_version = 6) as ipv6_bytes,
    sum(estimated_bytes) as sflow_estimated_bytes,
    sum(estimated_packets) as sflow_estimated_packets,
    sum(sample_count) as sample_count,
    bool_and(scaled_bytes is not null) as is_scaled
from scaled
group by interval_start, interval_date, coalesce(src_member_id, 'unknown'), coalesce(dst_member_id, 'unknown')
