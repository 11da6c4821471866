with

source as (
    {{ lake_source('reference', 'transit_contract_ports') }}
),

renamed as (
    select contract_id, port_id
    from source
)

select * from renamed
