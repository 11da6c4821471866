-- MAC addresses seen in flow samples that are on no configured port, per day (exchange time
-- zone), exporter, VLAN and side: to be reported to operations, never silently dropped.
with

tz as (
    select {{ exchange_timezone() }} as timezone
)

select
    cast(timezone(tz.timezone, macs.interval_start) as date) as traffic_date,
    macs.exporter_address,
    coalesce(macs.vlan, 0) as vlan,
    macs.mac,
    macs.direction,
    sum(macs.sample_count) as sample_count,
    sum(macs.estimated_bytes) as estimated_bytes,
    count(distinct macs.interval_start) as intervals_seen,
    min(macs.interval_start) as first_seen_at,
    max(macs.interval_start) as last_seen_at
from {{ ref('stg_lake__unknown_macs') }} as macs
cross join tz
group by all
