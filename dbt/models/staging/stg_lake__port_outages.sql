with

source as (
    {{ lake_source('lake', 'port_outages') }}
),

renamed as (
    select
        port_id,
        device_id,
        cause,
        start_at,
        end_at,
        duration_s,
        partition_date
    from source
)

select * from renamed
