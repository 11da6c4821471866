{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='traffic_date') }}
-- The exchange as a whole per day (exchange time zone), with no member's own figure: what members
-- may see when `[billing] member_visibility = "totals"`. Exchange traffic is the sum over members
-- of what their ports sent into (in) and received from (out) the exchange in each 5-minute
-- interval (counters, every row as measured); transit is the sum over the contracts' border ports.
-- With fewer than var('member_totals_min_members') members behind a figure, a member could
-- subtract its own figure from the total and get another member's: a day's exchange figures are
-- null unless that many members had traffic at the exchange that day, its transit figures null
-- unless that many members used transit that day.
with

tz as (
    select {{ exchange_timezone() }} as timezone
),

member_intervals as (
    select
        cast(timezone(tz.timezone, traffic.interval_start) as date) as traffic_date,
        traffic.interval_start,
        traffic.member_id,
        coalesce(traffic.in_bytes, 0) as in_bytes,
        coalesce(traffic.out_bytes, 0) as out_bytes
    from {{ ref('fct_member_traffic_5min') }} as traffic
    cross join tz
    where {{ incremental_filter('traffic.interval_date', date_column='traffic_date', slack_days=2) }}
),

exchange_intervals as (
    select traffic_date, interval_start, sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes
    from member_intervals
    group by traffic_date, interval_start
),

exchange_daily as (
    select
        traffic_date,
        count(*) as exchange_intervals,
        sum(in_bytes) as exchange_in_bytes,
        sum(out_bytes) as exchange_out_bytes,
        sum(in_bytes) * 8.0 / 300 / count(*) as exchange_avg_bps,
        {{ billing_percentile('in_bytes', 95) }} * 8.0 / 300 as exchange_p95_bps,
        max(in_bytes) * 8.0 / 300 as exchange_max_bps
    from exchange_intervals
    group by traffic_date
),

exchange_members as (
    select traffic_date, count(distinct member_id) filter (where in_bytes + out_bytes > 0) as members_counted
    from member_intervals
    group by traffic_date
),

transit_intervals as (
    select
        cast(timezone(tz.timezone, usage.interval_start) as date) as traffic_date,
        usage.interval_start,
        sum(usage.in_bytes) as in_bytes,
        sum(usage.out_bytes) as out_bytes
    from {{ ref('fct_transit_usage_5min') }} as usage
    cross join tz
    where {{ incremental_filter('usage.interval_date', date_column='traffic_date', slack_days=2) }}
    group by 1, 2
),

transit_daily as (
    select
        traffic_date,
        sum(in_bytes) as transit_in_bytes,
        sum(out_bytes) as transit_out_bytes,
        greatest({{ billing_percentile('in_bytes', 95) }}, {{ billing_percentile('out_bytes', 95) }}) * 8.0 / 300
            as transit_p95_bps
    from transit_intervals
    group by traffic_date
),

transit_members as (
    select
        cast(timezone(tz.timezone, member_transit.interval_start) as date) as traffic_date,
        count(distinct member_transit.member_id)
            filter (where member_transit.in_bytes + member_transit.out_bytes > 0) as transit_members_counted
    from {{ ref('fct_member_transit_usage_5min') }} as member_transit
    cross join tz
    where {{ incremental_filter('member_transit.interval_date', date_column='traffic_date', slack_days=2) }}
    group by 1
),

days as (
    select traffic_date from exchange_daily
    union
    select traffic_date from transit_daily
),

joined as (
    select
        days.traffic_date,
        coalesce(exchange_members.members_counted, 0) as members_counted,
        coalesce(transit_members.transit_members_counted, 0) as transit_members_counted,
        exchange_daily.exchange_intervals,
        exchange_daily.exchange_in_bytes,
        exchange_daily.exchange_out_bytes,
        exchange_daily.exchange_avg_bps,
        exchange_daily.exchange_p95_bps,
        exchange_daily.exchange_max_bps,
        transit_daily.transit_in_bytes,
        transit_daily.transit_out_bytes,
        transit_daily.transit_p95_bps
    from days
    left join exchange_daily using (traffic_date)
    left join exchange_members using (traffic_date)
    left join transit_daily using (traffic_date)
    left join transit_members using (traffic_date)
),

flagged as (
    select
        *,
        members_counted < {{ var('member_totals_min_members') }} as is_exchange_suppressed,
        transit_members_counted < {{ var('member_totals_min_members') }} as is_transit_suppressed
    from joined
)

select
    traffic_date,
    members_counted,
    is_exchange_suppressed,
    case when not is_exchange_suppressed then exchange_intervals end as exchange_intervals,
    case when not is_exchange_suppressed then exchange_in_bytes end as exchange_in_bytes,
    case when not is_exchange_suppressed then exchange_out_bytes end as exchange_out_bytes,
    case when not is_exchange_suppressed then exchange_avg_bps end as exchange_avg_bps,
    case when not is_exchange_suppressed then exchange_p95_bps end as exchange_p95_bps,
    case when not is_exchange_suppressed then exchange_max_bps end as exchange_max_bps,
    transit_members_counted,
    is_transit_suppressed,
    case when not is_transit_suppressed then transit_in_bytes end as transit_in_bytes,
    case when not is_transit_suppressed then transit_out_bytes end as transit_out_bytes,
    case when not is_transit_suppressed then transit_p95_bps end as transit_p95_bps
from flagged
where {{ incremental_filter('traffic_date', date_column='traffic_date', slack_days=1) }}
