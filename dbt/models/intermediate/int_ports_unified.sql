-- Every port the models know: member ports on exchange switches and border-router ports towards
-- transit providers, with the device, site and the exporter address their flows arrive from.
with

member_ports as (
    select
        ports.port_id,
        'member' as port_kind,
        ports.member_id,
        ports.switch_id as device_id,
        switches.site_id,
        ports.interface_name,
        ports.ifindex,
        ports.speed_mbps,
        ports.vlan,
        ports.bundle_name,
        ports.connected_date,
        ports.disconnected_date,
        switches.sflow_agent_address as exporter_address
    from {{ ref('stg_reference__ports') }} as ports
    left join {{ ref('stg_reference__switches') }} as switches using (switch_id)
),

border_ports as (
    select
        border_ports.port_id,
        'transit' as port_kind,
        cast(null as varchar) as member_id,
        border_ports.router_id as device_id,
        routers.site_id,
        border_ports.interface_name,
        border_ports.ifindex,
        border_ports.speed_mbps,
        cast(null as integer) as vlan,
        cast(null as varchar) as bundle_name,
        cast(null as date) as connected_date,
        cast(null as date) as disconnected_date,
        routers.flow_exporter_address as exporter_address
    from {{ ref('stg_reference__border_router_ports') }} as border_ports
    left join {{ ref('stg_reference__border_routers') }} as routers using (router_id)
)

select * from member_ports
union all
select * from border_ports
