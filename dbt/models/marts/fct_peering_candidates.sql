-- Remote networks reached over transit, per month (exchange time zone), ranked by traffic: bytes
-- scaled to the transit counters, average Mbps over the month's transit intervals, where the
-- network peers according to PeeringDB (optional source), and the transit cost it would save if
-- peered: average Mbps x the pooled price (the average, not its own 95th, because moving one
-- network off transit lowers the pool's 95th by about its average share).
with

tz as (
    select {{ exchange_timezone() }} as timezone
),

flows as (
    select
        attributed.remote_asn,
        {{ local_month('attributed.interval_start', 'tz.timezone') }} as month,
        attributed.estimated_bytes * scaling.scale_factor as scaled_bytes,
        attributed.estimated_bytes
    from {{ ref('int_transit_flows_attributed') }} as attributed
    cross join tz
    left join {{ ref('int_transit_port_scaling_5min') }} as scaling
        using (interval_start, port_id, direction)
    where attributed.remote_asn is not null
),

month_intervals as (
    select {{ local_month('scaling.interval_start', 'tz.timezone') }} as month,
           count(distinct scaling.interval_start) as transit_intervals
    from {{ ref('int_transit_port_scaling_5min') }} as scaling
    cross join tz
    where scaling.scale_factor is not null
    group by all
),

per_asn as (
    select remote_asn, month, cast(round(sum(scaled_bytes)) as bigint) as bytes,
           sum(estimated_bytes) as flow_estimated_bytes
    from flows
    group by remote_asn, month
),

peeringdb as (
    select asn, count(distinct ix_id) as exchange_count, list(distinct ix_name order by ix_name) as exchanges
    from {{ ref('stg_reference__peeringdb_netixlan') }}
    group by asn
),

price as (
    select month, price_per_mbps from {{ ref('int_transit_price_pooled_monthly') }}
),

measured as (
    select
        per_asn.*,
        cast(round(per_asn.bytes * 8.0 / (month_intervals.transit_intervals * 300) / 1e6, 4) as decimal(18, 4))
            as avg_mbps
    from per_asn
    left join month_intervals using (month)
)

select
    measured.month,
    measured.remote_asn,
    row_number() over (partition by measured.month order by measured.bytes desc nulls last, measured.remote_asn)
        as traffic_rank,
    measured.bytes,
    measured.flow_estimated_bytes,
    measured.avg_mbps,
    coalesce(peeringdb.exchange_count, 0) as peeringdb_exchange_count,
    coalesce(peeringdb.exchanges, []::varchar[]) as peeringdb_exchanges,
    peeringdb.asn is not null as is_in_peeringdb,
    price.price_per_mbps as transit_price_per_mbps,
    {{ multiply_money('measured.avg_mbps', 'price.price_per_mbps') }} as saving_if_peered
from measured
left join peeringdb on peeringdb.asn = measured.remote_asn
left join price using (month)
