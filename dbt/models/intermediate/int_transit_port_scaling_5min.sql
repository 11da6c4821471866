{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- Per transit port, interval and direction: the sampled flow estimate (all flows, attributed or
-- not) and the port's counter bytes, whose ratio scales each member's flow estimate so that the
-- port's flows add up to its counters, as the matrix does for exchange ports.
with

flows as (
    select interval_start, interval_date, port_id, direction, sum(estimated_bytes) as flow_estimated_bytes
    from {{ ref('int_transit_flows_attributed') }}
    where {{ incremental_filter('interval_date') }}
    group by all
),

rates as (
    select interval_start, port_id, 'in' as direction, in_bytes as counter_bytes
    from {{ ref('int_port_rates_deduplicated') }}
    where is_trusted and {{ incremental_filter('interval_date') }}
    union all
    select interval_start, port_id, 'out' as direction, out_bytes as counter_bytes
    from {{ ref('int_port_rates_deduplicated') }}
    where is_trusted and {{ incremental_filter('interval_date') }}
)

select
    flows.interval_start,
    flows.interval_date,
    flows.port_id,
    flows.direction,
    flows.flow_estimated_bytes,
    rates.counter_bytes,
    rates.counter_bytes * 1.0 / nullif(flows.flow_estimated_bytes, 0) as scale_factor
from flows
left join rates using (interval_start, port_id, direction)
