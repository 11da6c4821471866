with

contracts as (
    select * from {{ ref('stg_reference__transit_contracts') }}
),

contract_ports as (
    select
        contract_ports.contract_id,
        list(contract_ports.port_id order by contract_ports.port_id) as port_ids,
        sum(border_ports.speed_mbps) as total_speed_mbps
    from {{ ref('stg_reference__transit_contract_ports') }} as contract_ports
    left join {{ ref('stg_reference__border_router_ports') }} as border_ports using (port_id)
    group by contract_ports.contract_id
)

select
    contracts.contract_id,
    contracts.provider,
    contracts.currency,
    contracts.commit_mbps,
    contracts.price_per_mbps,
    contracts.burst_price_per_mbps,
    contracts.percentile,
    contracts.direction_rule,
    contracts.billing_timezone,
    contracts.gap_policy,
    contracts.term_start_date,
    contracts.term_end_date,
    coalesce(contract_ports.port_ids, []::varchar[]) as port_ids,
    coalesce(contract_ports.total_speed_mbps, 0) as total_speed_mbps
from contracts
left join contract_ports using (contract_id)
