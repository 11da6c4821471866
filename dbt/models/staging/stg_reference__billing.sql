with

source as (
    {{ lake_source('reference', 'billing') }}
),

renamed as (
    select exchange_name, currency, vat_rate, timezone, transit_allocation, member_visibility
    from source
)

select * from renamed
