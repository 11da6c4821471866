-- Each member's port fees per month, prorated by the days a port was connected in the month
-- (connected_date inclusive, disconnected_date exclusive): fee x days / days in month, exact to
-- 4 decimals. Months run from the earliest month with traffic to the latest.
with

months as (
    select distinct month from {{ ref('fct_member_traffic_monthly') }}
),

ports as (
    select ports.port_id, ports.member_id, ports.speed_mbps, ports.connected_date, ports.disconnected_date,
           fees.monthly_fee
    from {{ ref('stg_reference__ports') }} as ports
    left join {{ ref('stg_reference__port_fees') }} as fees using (speed_mbps)
),

port_months as (
    select
        ports.*,
        months.month,
        cast(date_diff('day', months.month, cast(months.month + interval 1 month as date)) as integer) as days_in_month,
        greatest(
            date_diff(
                'day',
                greatest(months.month, coalesce(ports.connected_date, months.month)),
                least(cast(months.month + interval 1 month as date),
                      coalesce(ports.disconnected_date, cast(months.month + interval 1 month as date)))
            ),
            0
        ) as days_connected
    from ports
    cross join months
)

select
    member_id,
    month,
    count(*) filter (where days_connected > 0) as ports_connected,
    cast(coalesce(sum(
        {{ divide_money('monthly_fee * days_connected', 'days_in_month') }}
    ) filter (where days_connected > 0), 0) as decimal(18, 4)) as port_fees,
    count(*) filter (where days_connected > 0 and monthly_fee is null) as ports_without_fee
from port_months
group by member_id, month
