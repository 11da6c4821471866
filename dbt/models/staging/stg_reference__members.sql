with

source as (
    {{ lake_source('reference', 'members') }}
),

renamed as (
    select
        member_id,
        asn,
        name as member_name,
        billing_entity,
        kind as member_kind,
        joined_date,
        left_date,
        prefixes
    from source
)

select * from renamed
