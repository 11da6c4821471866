{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- Counter-hygiene rates, one row per port and interval. Hygiene writes one row per port and
-- interval; should a re-run leave two (different part keys), the trusted one with bytes wins.
with

rates as (
    select *
    from {{ ref('stg_lake__port_rates_5min') }}
    where {{ incremental_filter('partition_date', slack_days=1) }}
      and {{ incremental_filter('interval_date') }}
),

deduplicated as (
    select *
    from rates
    qualify row_number() over (
        partition by port_id, interval_start
        order by is_trusted desc, (in_bytes is not null) desc, rate_source, partition_date desc
    ) = 1
)

select
    interval_start,
    interval_date,
    port_id,
    device_id,
    ifindex,
    speed_mbps,
    in_bytes,
    out_bytes,
    in_packets,
    out_packets,
    in_bps,
    out_bps,
    is_trusted,
    is_gap,
    is_failed_read,
    is_reset,
    is_wrap,
    is_over_speed,
    rate_source
from deduplicated
