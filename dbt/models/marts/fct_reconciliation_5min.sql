{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- sFlow estimate against counters per exchange port and interval, both directions. A ratio far
-- from 1 (beyond the `reconciliation_tolerance` var, with enough samples to judge) is an alarm:
-- wrong sampling rate, lost samples or egress sampling.
with

sflow as (
    select *
    from {{ ref('int_port_sflow_5min') }}
    where {{ incremental_filter('interval_date') }}
),

rates as (
    select *
    from {{ ref('fct_port_traffic_5min') }}
    where port_kind = 'member' and {{ incremental_filter('interval_date') }}
),

joined as (
    select
        rates.port_id,
        rates.interval_start,
        rates.interval_date,
        rates.member_id,
        rates.in_bytes as counter_in_bytes,
        rates.out_bytes as counter_out_bytes,
        coalesce(sflow_in.estimated_bytes, 0) as sflow_in_bytes,
        coalesce(sflow_out.estimated_bytes, 0) as sflow_out_bytes,
        coalesce(sflow_in.sample_count, 0) as in_sample_count,
        coalesce(sflow_out.sample_count, 0) as out_sample_count
    from rates
    left join sflow as sflow_in
        on sflow_in.port_id = rates.port_id and sflow_in.interval_start = rates.interval_start
       and sflow_in.direction = 'in'
    left join sflow as sflow_out
        on sflow_out.port_id = rates.port_id and sflow_out.interval_start = rates.interval_start
       and sflow_out.direction = 'out'
    where rates.is_trusted
)

select
    *,
    sflow_in_bytes * 1.0 / nullif(counter_in_bytes, 0) as in_ratio,
    sflow_out_bytes * 1.0 / nullif(counter_out_bytes, 0) as out_ratio,
    coalesce((in_sample_count >= {{ var('reconciliation_min_samples') }}
        and abs(sflow_in_bytes * 1.0 / nullif(counter_in_bytes, 0) - 1) > {{ var('reconciliation_tolerance') }})
    or (out_sample_count >= {{ var('reconciliation_min_samples') }}
        and abs(sflow_out_bytes * 1.0 / nullif(counter_out_bytes, 0) - 1) > {{ var('reconciliation_tolerance') }}), false)
        as is_alarm
from joined
