-- Every autonomous system the cooperative deals with: members, and remote networks reached over
-- transit; with where each peers according to PeeringDB when that optional source is present.
with

members as (
    select asn, min(member_id) as member_id, min(member_name) as member_name
    from {{ ref('stg_reference__members') }}
    group by asn
),

remote as (
    select remote_asn as asn, sum(estimated_bytes) as transit_estimated_bytes
    from {{ ref('int_transit_flows_attributed') }}
    where remote_asn is not null
    group by remote_asn
),

peeringdb as (
    select asn, count(distinct ix_id) as peeringdb_exchange_count,
           list(distinct ix_name order by ix_name) as peeringdb_exchanges
    from {{ ref('stg_reference__peeringdb_netixlan') }}
    where asn is not null
    group by asn
),

all_asns as (
    select asn from members
    union
    select asn from remote
)

select
    all_asns.asn,
    members.member_id is not null as is_member,
    members.member_id,
    members.member_name,
    remote.asn is not null as is_seen_over_transit,
    coalesce(peeringdb.peeringdb_exchange_count, 0) as peeringdb_exchange_count,
    coalesce(peeringdb.peeringdb_exchanges, []::varchar[]) as peeringdb_exchanges
from all_asns
left join members using (asn)
left join remote using (asn)
left join peeringdb using (asn)
