with

source as (
    {{ lake_source('lake', 'unknown_macs') }}
),

renamed as (
    select
        interval_start,
        cast(interval_start as date) as interval_date,
        exporter_address,
        vlan,
        lower(mac) as mac,
        direction,
        sample_count,
        estimated_bytes,
        source_file,
        partition_date
    from source
)

select * from renamed
