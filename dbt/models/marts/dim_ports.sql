with

ports as (
    select * from {{ ref('int_ports_unified') }}
),

macs as (
    select port_id, macs from {{ ref('stg_reference__ports') }}
),

fees as (
    select * from {{ ref('stg_reference__port_fees') }}
)

select
    ports.port_id,
    ports.port_kind,
    ports.member_id,
    ports.device_id,
    ports.site_id,
    ports.interface_name,
    ports.ifindex,
    ports.speed_mbps,
    ports.vlan,
    coalesce(macs.macs, []::varchar[]) as macs,
    ports.bundle_name,
    ports.connected_date,
    ports.disconnected_date,
    ports.exporter_address,
    case when ports.port_kind = 'member' then fees.monthly_fee end as monthly_fee
from ports
left join macs using (port_id)
left join fees on fees.speed_mbps = ports.speed_mbps
