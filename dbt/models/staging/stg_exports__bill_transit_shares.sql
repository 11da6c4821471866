-- Members' transit share lines of the standing bill document of each month, as peerpool bill
-- wrote them (read and checked against the documents' manifests by peerpool/export_sources.py).
with

source as (
    {{ lake_source('exports', 'bill_transit_shares') }}
),

renamed as (
    select
        member_id,
        cast(month || '-01' as date) as month,
        document_status,
        document,
        manifest_sha256,
        bill_serving_sha256,
        currency,
        allocation_method,
        transit_share,
        own_transit_p95_mbps,
        allocation_weight,
        allocation_weight_unit,
        got_left_over_grosz,
        pool_total,
        total_allocation_weight,
        members_sharing
    from source
)

select * from renamed
