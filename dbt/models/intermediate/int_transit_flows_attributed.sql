{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- Border-router flows attributed to members: by the member's ASN on the member side of the flow
-- (pyasn enrichment), failing that by the member's configured prefixes (longest match).
-- Rows matching no member keep member_id null: they still count in each port's flow total,
-- which is what the counters scale.
with

flows as (
    select *
    from {{ ref('int_border_flows_classified') }}
    where {{ incremental_filter('interval_date') }}
),

members_by_asn as (
    select asn, min(member_id) as member_id
    from {{ ref('stg_reference__members') }}
    group by asn
),

member_asns as (
    select asn from members_by_asn
)

select
    flows.interval_start,
    flows.interval_date,
    flows.port_id,
    flows.direction,
    coalesce(by_asn.member_id, by_prefix.member_id) as member_id,
    case when by_asn.member_id is not null then 'asn'
         when by_prefix.member_id is not null then 'prefix' end as attributed_by,
    case when flows.remote_asn in (select asn from member_asns) then null else flows.remote_asn end as remote_asn,
    flows.ip_version,
    sum(flows.estimated_bytes) as estimated_bytes,
    count(*) as flow_count
from flows
left join members_by_asn as by_asn on flows.member_side_asn = by_asn.asn
left join {{ ref('int_ip_addresses_to_members') }} as by_prefix
    on by_asn.member_id is null and flows.member_side_ip = by_prefix.ip
group by all
