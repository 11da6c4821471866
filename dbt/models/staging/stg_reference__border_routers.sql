with

source as (
    {{ lake_source('reference', 'border_routers') }}
),

renamed as (
    select router_id, site_id, management_address, flow_exporter_address, sampling_rate_override
    from source
)

select * from renamed
