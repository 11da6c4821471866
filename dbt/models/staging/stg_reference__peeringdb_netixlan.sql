with

source as (
    {{ lake_source('reference', 'peeringdb_netixlan') }}
),

renamed as (
    select
        netixlan_id,
        net_id,
        ix_id,
        ixlan_id,
        ix_name,
        asn,
        speed_mbps,
        ipaddr4,
        ipaddr6,
        is_rs_peer,
        is_operational
    from source
)

select * from renamed
