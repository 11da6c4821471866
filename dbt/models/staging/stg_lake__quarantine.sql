with

source as (
    {{ lake_source('lake', 'quarantine') }}
),

renamed as (
    select
        received_at,
        {{ interval_5min('received_at') }} as interval_start,
        cast({{ interval_5min('received_at') }} as date) as interval_date,
        flow_protocol,
        exporter_address,
        reason,
        "offset" as byte_offset,
        octet_length(datagram) as datagram_bytes,
        source_file,
        partition_date
    from source
)

select * from renamed
