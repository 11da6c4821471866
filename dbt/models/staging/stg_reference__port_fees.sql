with

source as (
    {{ lake_source('reference', 'port_fees') }}
),

renamed as (
    select speed_mbps, monthly_fee
    from source
)

select * from renamed
