with

source as (
    {{ lake_source('reference', 'switches') }}
),

renamed as (
    select switch_id, site_id, management_address, sflow_agent_address, sampling_rate
    from source
)

select * from renamed
