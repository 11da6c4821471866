with

source as (
    {{ lake_source('reference', 'one_off_fees') }}
),

renamed as (
    select member_id, cast(month || '-01' as date) as fee_month, description, amount
    from source
)

select * from renamed
