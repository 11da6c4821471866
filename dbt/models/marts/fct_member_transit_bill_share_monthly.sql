-- One row per member and billing month: the member's share of the pooled transit bill exactly as
-- the month's standing bill document states it (the highest correction, else the month close,
-- else the nightly preview). `peerpool bill` computes the allocation in exact arithmetic and
-- `peerpool build` reads its documents (checked against their sha256 manifests) before dbt runs,
-- so nothing here is recomputed: the figures are the bill's own. The billing run reads the
-- serving file the previous build published, so this mart holds the bill of the billing run
-- before this build (docs/models.md). Pool-wide figures are null when the document leaves them
-- out (`[billing] member_visibility = "none"`).
with

shares as (
    select * from {{ ref('stg_exports__bill_transit_shares') }}
)

select
    member_id,
    month,
    document_status,
    document_status <> 'preview' as is_invoice_basis,
    allocation_method,
    currency,
    transit_share,
    own_transit_p95_mbps,
    allocation_weight,
    allocation_weight_unit,
    got_left_over_grosz,
    pool_total,
    total_allocation_weight,
    members_sharing,
    document,
    manifest_sha256,
    bill_serving_sha256
from shares
