{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- Each member's traffic over transit per 5-minute interval, from border-router IPFIX / NetFlow v9
-- attributed by ASN or prefix, scaled per transit port and interval to the port's counters.
-- in = from the providers to the member, out = from the member to the providers. The raw flow
-- estimate stays beside it; without a trusted counter the scaled figure is null. Scaled bytes
-- are rounded to whole bytes.
with

attributed as (
    select *
    from {{ ref('int_transit_flows_attributed') }}
    where member_id is not null and {{ incremental_filter('interval_date') }}
),

scaling as (
    select *
    from {{ ref('int_transit_port_scaling_5min') }}
    where {{ incremental_filter('interval_date') }}
),

scaled as (
    select
        attributed.*,
        attributed.estimated_bytes * scaling.scale_factor as scaled_bytes
    from attributed
    left join scaling using (interval_start, port_id, direction)
)

select
    member_id,
    interval_start,
    interval_date,
    cast(round(coalesce(sum(scaled_bytes) filter (where direction = 'in'), 0)) as bigint) as in_bytes,
    cast(round(coalesce(sum(scaled_bytes) filter (where direction = 'out'), 0)) as bigint) as out_bytes,
    round(coalesce(sum(scaled_bytes) filter (where direction = 'in'), 0)) * 8.0 / 300 as in_bps,
    round(coalesce(sum(scaled_bytes) filter (where direction = 'out'), 0)) * 8.0 / 300 as out_bps,
    coalesce(sum(estimated_bytes) filter (where direction = 'in'), 0) as in_flow_estimated_bytes,
    coalesce(sum(estimated_bytes) filter (where direction = 'out'), 0) as out_flow_estimated_bytes,
    sum(flow_count) as flow_count,
    bool_and(scaled_bytes is not null) as is_scaled,
    bool_or(attributed_by = 'prefix') as has_prefix_attribution
from scaled
group by member_id, interval_start, interval_date
