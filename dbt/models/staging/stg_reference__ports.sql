with

source as (
    {{ lake_source('reference', 'ports') }}
),

renamed as (
    select
        port_id,
        switch_id,
        interface as interface_name,
        ifindex,
        speed_mbps,
        vlan,
        member_id,
        macs,
        ipv4 as ipv4_addresses,
        ipv6 as ipv6_addresses,
        connected_date,
        disconnected_date,
        nullif(bundle, '') as bundle_name,
        counter_bits
    from source
)

select * from renamed
