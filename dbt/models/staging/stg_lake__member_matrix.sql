with

source as (
    {{ lake_source('lake', 'member_matrix') }}
),

renamed as (
    select
        interval_start,
        cast(interval_start as date) as interval_date,
        site as site_id,
        exporter_address,
        vlan,
        ip_version,
        src_member_id,
        dst_member_id,
        src_port_id,
        dst_port_id,
        estimated_bytes,
        estimated_packets,
        sample_count,
        source_file,
        partition_date
    from source
)

select * from renamed
