{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- IPFIX / NetFlow v9 rows from border routers (exporter = a router's flow_exporter_address), each
-- put on its transit port and direction: leaving through a transit port is 'out' (towards the
-- provider, the port's ifOut), arriving on one is 'in' (ifIn). The member side is the source for
-- 'out' and the destination for 'in'; the far side is the remote ASN.
with

routers as (
    select router_id, flow_exporter_address from {{ ref('stg_reference__border_routers') }}
),

transit_ports as (
    select ports.port_id, ports.router_id, ports.ifindex
    from {{ ref('stg_reference__border_router_ports') }} as ports
),

flows as (
    select flows.*, routers.router_id
    from {{ ref('stg_lake__flows') }} as flows
    inner join routers on flows.exporter_address = routers.flow_exporter_address
    where flows.flow_protocol in ('ipfix', 'netflow9')
      and {{ incremental_filter('flows.partition_date', slack_days=1) }}
      and {{ incremental_filter('flows.interval_date') }}
),

classified as (
    select
        flows.interval_start,
        flows.interval_date,
        coalesce(egress.port_id, ingress.port_id) as port_id,
        case when egress.port_id is not null then 'out' else 'in' end as direction,
        case when egress.port_id is not null then flows.src_ip else flows.dst_ip end as member_side_ip,
        case when egress.port_id is not null then flows.src_asn else flows.dst_asn end as member_side_asn,
        case when egress.port_id is not null then flows.dst_asn else flows.src_asn end as remote_asn,
        flows.src_ip,
        flows.dst_ip,
        flows.ip_version,
        flows.estimated_bytes
    from flows
    left join transit_ports as egress
        on egress.router_id = flows.router_id and egress.ifindex = flows.output_ifindex
    left join transit_ports as ingress
        on ingress.router_id = flows.router_id and ingress.ifindex = flows.input_ifindex
    where coalesce(egress.port_id, ingress.port_id) is not null
)

select * from classified
