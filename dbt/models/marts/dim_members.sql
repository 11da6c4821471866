with

members as (
    select * from {{ ref('stg_reference__members') }}
),

ports as (
    select member_id, count(*) as port_count, sum(speed_mbps) as total_speed_mbps
    from {{ ref('stg_reference__ports') }}
    group by member_id
)

select
    members.member_id,
    members.asn,
    members.member_name,
    members.billing_entity,
    members.member_kind,
    members.joined_date,
    members.left_date,
    coalesce(len(members.prefixes), 0) as prefix_count,
    coalesce(ports.port_count, 0) as port_count,
    coalesce(ports.total_speed_mbps, 0) as total_speed_mbps
from members
left join ports using (member_id)
