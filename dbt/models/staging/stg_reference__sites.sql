with

source as (
    {{ lake_source('reference', 'sites') }}
),

renamed as (
    select site_id, name as site_name, city
    from source
)

select * from renamed
