{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- sFlow against counters for the exchange as a whole, per hour: fct_reconciliation_5min summed over
-- member ports and the hour's 5-minute intervals. The operators' hourly chart reads this instead
-- of a month of 5-minute rows per port (a third of a second per fetch on a year of data,
-- bench/bench_dashboards.py). Ratios are of the sums, so a busy port weighs by its bytes.
with

five_minute as (
    select *
    from {{ ref('fct_reconciliation_5min') }}
    where {{ incremental_filter('interval_date') }}
)

select
    time_bucket(interval '1 hour', interval_start) as hour_start,
    interval_date,
    count(distinct port_id) as ports,
    count(*) as port_intervals,
    count(*) filter (where is_alarm) as alarm_intervals,
    sum(counter_in_bytes) as counter_in_bytes,
    sum(counter_out_bytes) as counter_out_bytes,
    sum(sflow_in_bytes) as sflow_in_bytes,
    sum(sflow_out_bytes) as sflow_out_bytes,
    sum(in_sample_count) as in_sample_count,
    sum(out_sample_count) as out_sample_count,
    cast(sum(sflow_in_bytes) as double) / nullif(sum(counter_in_bytes), 0) as in_ratio,
    cast(sum(sflow_out_bytes) as double) / nullif(sum(counter_out_bytes), 0) as out_ratio
from five_minute
group by 1, 2
