-- The pooled effective transit price per month (exchange time zone and currency): every
-- contract's total cost over every contract's billed Mbps, exact to 4 decimals.
with

billing as (
    select {{ exchange_timezone() }} as timezone,
           coalesce((select max(currency) from {{ ref('stg_reference__billing') }}), 'PLN') as currency
),

bills as (
    select bills.*
    from {{ ref('fct_transit_bill_monthly') }} as bills
    cross join billing
    where bills.currency = billing.currency
),

pooled as (
    select
        billing_month as month,
        any_value(currency) as currency,
        count(*) as contract_count,
        cast(sum(total_cost) as decimal(18, 4)) as total_cost,
        cast(sum(billed_mbps) as decimal(18, 4)) as billed_mbps
    from bills
    group by billing_month
)

select
    month,
    currency,
    contract_count,
    total_cost,
    billed_mbps,
    {{ divide_money('total_cost', 'billed_mbps') }} as price_per_mbps
from pooled
