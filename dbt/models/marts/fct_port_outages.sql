-- Outages per port from the polls: oper status down and device unreachable kept apart.
select
    outages.port_id,
    outages.cause,
    outages.start_at,
    outages.end_at,
    outages.end_at is null as is_ongoing,
    coalesce(outages.duration_s, cast(epoch(outages.end_at) - epoch(outages.start_at) as bigint)) as duration_s,
    coalesce(ports.device_id, outages.device_id) as device_id,
    ports.port_kind,
    ports.member_id,
    ports.site_id
from {{ ref('stg_lake__port_outages') }} as outages
left join {{ ref('int_ports_unified') }} as ports using (port_id)
qualify row_number() over (partition by outages.port_id, outages.cause, outages.start_at
                           order by outages.end_at desc nulls first) = 1
