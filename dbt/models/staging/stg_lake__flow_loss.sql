with

source as (
    {{ lake_source('lake', 'flow_loss') }}
),

renamed as (
    select
        interval_start,
        cast(interval_start as date) as interval_date,
        flow_protocol,
        exporter_address,
        coalesce(observation_domain, 0) as observation_domain,
        datagrams_received,
        datagrams_missing,
        samples_received,
        samples_missing,
        source_file,
        partition_date
    from source
)

select * from renamed
