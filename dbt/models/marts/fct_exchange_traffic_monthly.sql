-- The exchange as a whole per calendar month (exchange billing time zone), with no member's own
-- figure: members may see it when `[billing] member_visibility = "totals"`. Exchange traffic is
-- the per-interval sum over members (counters), its 95th the nearest rank of that sum; transit is
-- the pooled bill of the contracts in the exchange currency, each contract's total rounded half
-- up to the grosz as the member bills round it, and the pooled price per Mbps it gives.
-- Suppression as in fct_exchange_traffic_daily: the exchange figures need at least
-- var('member_totals_min_members') members with traffic in the month (counted from their daily
-- rows, so a member with no complete interval is not counted: fewer, never more), the transit
-- figures that many members with transit use in the month.
with

tz as (
    select {{ exchange_timezone() }} as timezone,
           coalesce((select max(currency) from {{ ref('stg_reference__billing') }}), 'PLN') as currency
),

exchange_intervals as (
    select
        {{ local_month('traffic.interval_start', 'tz.timezone') }} as month,
        traffic.interval_start,
        sum(coalesce(traffic.in_bytes, 0)) as in_bytes,
        sum(coalesce(traffic.out_bytes, 0)) as out_bytes
    from {{ ref('fct_member_traffic_5min') }} as traffic
    cross join tz
    group by 1, 2
),

exchange_monthly as (
    select
        month,
        sum(in_bytes) as exchange_in_bytes,
        sum(out_bytes) as exchange_out_bytes,
        {{ bytes_to_mbps(billing_percentile('in_bytes', 95)) }} as exchange_p95_mbps,
        {{ bytes_to_mbps('max(in_bytes)') }} as exchange_max_mbps
    from exchange_intervals
    group by month
),

exchange_members as (
    select
        cast(date_trunc('month', traffic_date) as date) as month,
        count(distinct member_id) filter (where coalesce(in_bytes, 0) + coalesce(out_bytes, 0) > 0) as members_counted
    from {{ ref('fct_member_traffic_daily') }}
    group by 1
),

transit_monthly as (
    select
        {{ local_month('usage.interval_start', 'tz.timezone') }} as month,
        sum(usage.in_bytes) as transit_in_bytes,
        sum(usage.out_bytes) as transit_out_bytes
    from {{ ref('fct_transit_usage_5min') }} as usage
    cross join tz
    group by 1
),

bills as (
    select
        bills.billing_month as month,
        any_value(tz.currency) as currency,
        cast(sum(bills.billed_mbps) as decimal(18, 4)) as transit_billed_mbps,
        cast(sum(bills.commit_mbps) as decimal(18, 4)) as transit_commit_mbps,
        cast(sum(round(bills.total_cost, 2)) as decimal(18, 4)) as pool_transit_cost
    from {{ ref('fct_transit_bill_monthly') }} as bills
    cross join tz
    where bills.currency = tz.currency
    group by 1
),

transit_members as (
    select month, count(distinct member_id) filter (where in_bytes + out_bytes > 0) as transit_members_counted
    from {{ ref('fct_member_transit_usage') }}
    group by month
),

months as (
    select month from exchange_monthly
    union
    select month from transit_monthly
    union
    select month from bills
),

joined as (
    select
        months.month,
        coalesce(exchange_members.members_counted, 0) as members_counted,
        coalesce(transit_members.transit_members_counted, 0) as transit_members_counted,
        exchange_monthly.exchange_in_bytes,
        exchange_monthly.exchange_out_bytes,
        exchange_monthly.exchange_p95_mbps,
        exchange_monthly.exchange_max_mbps,
        transit_monthly.transit_in_bytes,
        transit_monthly.transit_out_bytes,
        bills.currency,
        bills.transit_billed_mbps,
        bills.transit_commit_mbps,
        bills.pool_transit_cost
    from months
    left join exchange_monthly using (month)
    left join exchange_members using (month)
    left join transit_monthly using (month)
    left join bills using (month)
    left join transit_members using (month)
),

flagged as (
    select
        *,
        members_counted < {{ var('member_totals_min_members') }} as is_exchange_suppressed,
        transit_members_counted < {{ var('member_totals_min_members') }} as is_transit_suppressed
    from joined
)

select
    month,
    members_counted,
    is_exchange_suppressed,
    case when not is_exchange_suppressed then exchange_in_bytes end as exchange_in_bytes,
    case when not is_exchange_suppressed then exchange_out_bytes end as exchange_out_bytes,
    case when not is_exchange_suppressed then exchange_p95_mbps end as exchange_p95_mbps,
    case when not is_exchange_suppressed then exchange_max_mbps end as exchange_max_mbps,
    transit_members_counted,
    is_transit_suppressed,
    case when not is_transit_suppressed then transit_in_bytes end as transit_in_bytes,
    case when not is_transit_suppressed then transit_out_bytes end as transit_out_bytes,
    currency,
    case when not is_transit_suppressed then transit_billed_mbps end as transit_billed_mbps,
    case when not is_transit_suppressed then transit_commit_mbps end as transit_commit_mbps,
    case when not is_transit_suppressed then pool_transit_cost end as pool_transit_cost,
    case when not is_transit_suppressed then {{ divide_money('pool_transit_cost', 'transit_billed_mbps') }} end
        as pooled_price_per_mbps
from flagged
