with

source as (
    {{ lake_source('reference', 'member_prefixes') }}
),

renamed as (
    select member_id, prefix, ip_version, prefix_length, first_hi, first_lo, last_hi, last_lo
    from source
)

select * from renamed
