with

source as (
    {{ lake_source('reference', 'border_router_ports') }}
),

renamed as (
    select port_id, router_id, interface as interface_name, ifindex, speed_mbps
    from source
)

select * from renamed
