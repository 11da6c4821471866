-- Per member and month: what the member moves over the exchange and over transit, what the peered
-- traffic would have cost over transit at the pooled effective price, and the member's cost of
-- peering (its prorated port fees) set against it (W. Norton's break-even, domain.md section 4):
--   cost per Mbps = port fees / peered Mbps; break-even Mbps = port fees / transit price;
--   savings = (peered Mbps - break-even Mbps) x transit price  (= transit value - port fees).
-- Mbps are the billed 95th (max of in and out). Money DECIMAL(18,4), exact, half up.
with

exchange as (
    select member_id, month, billed_p95_mbps as peered_mbps
    from {{ ref('fct_member_traffic_monthly') }}
),

transit as (
    select member_id, month, billed_p95_mbps as transit_mbps
    from {{ ref('fct_member_transit_usage') }}
),

keys as (
    select member_id, month from exchange
    union
    select member_id, month from transit
),

price as (
    select month, currency, price_per_mbps from {{ ref('int_transit_price_pooled_monthly') }}
),

fees as (
    select member_id, month, port_fees from {{ ref('int_member_port_fees_monthly') }}
),

joined as (
    select
        keys.member_id,
        keys.month,
        coalesce(exchange.peered_mbps, 0)::decimal(18, 4) as peered_mbps,
        coalesce(transit.transit_mbps, 0)::decimal(18, 4) as transit_mbps,
        price.currency,
        price.price_per_mbps as transit_price_per_mbps,
        coalesce(fees.port_fees, 0)::decimal(18, 4) as port_fees
    from keys
    left join exchange using (member_id, month)
    left join transit using (member_id, month)
    left join price using (month)
    left join fees using (member_id, month)
)

select
    member_id,
    month,
    currency,
    peered_mbps,
    transit_mbps,
    transit_price_per_mbps,
    {{ multiply_money('peered_mbps', 'transit_price_per_mbps') }} as peered_value_at_transit_price,
    port_fees as peering_cost,
    {{ divide_money('port_fees', 'peered_mbps') }} as peering_cost_per_mbps,
    {{ divide_money('port_fees', 'transit_price_per_mbps') }} as break_even_mbps,
    {{ multiply_money('peered_mbps - ' ~ divide_money('port_fees', 'transit_price_per_mbps'), 'transit_price_per_mbps') }}
        as savings
from joined
