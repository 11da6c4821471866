-- A year of synthetic facts for bench/bench_dashboards.py (DuckDB). Reads the temp table r
-- (member_id, interval_start, in_mbps, out_mbps, transit_share, ts) and the real dimension tables
-- that `peerpool build` wrote; fills every fact mart the dashboards read. Statements end with ";"
-- at the end of a line.

insert into main.fct_member_traffic_5min by name
select member_id, ts as interval_start, cast(ts as date) as interval_date, 1 as port_count,
       1 as ports_with_rate, true as is_complete,
       cast(in_mbps * 1e6 * 300 / 8 as hugeint) as in_bytes, cast(out_mbps * 1e6 * 300 / 8 as hugeint) as out_bytes,
       in_mbps * 1e6 as in_bps, out_mbps * 1e6 as out_bps,
       in_mbps * 1e6 * 300 / 8 * 0.7 as in_ipv4_bytes, in_mbps * 1e6 * 300 / 8 * 0.3 as in_ipv6_bytes,
       out_mbps * 1e6 * 300 / 8 * 0.7 as out_ipv4_bytes, out_mbps * 1e6 * 300 / 8 * 0.3 as out_ipv6_bytes
from r
order by ts, member_id;

insert into main.fct_port_traffic_5min by name
with ports as (
    select port_id, member_id, device_id, site_id, speed_mbps,
           count(*) over (partition by member_id) as member_ports
    from main.dim_ports where port_kind = 'member'
)
select ports.port_id, r.ts as interval_start, cast(r.ts as date) as interval_date, 'member' as port_kind,
       ports.member_id, ports.device_id, ports.site_id, ports.speed_mbps,
       cast(r.in_mbps / member_ports * 1e6 * 300 / 8 as bigint) as in_bytes,
       cast(r.out_mbps / member_ports * 1e6 * 300 / 8 as bigint) as out_bytes,
       r.in_mbps / member_ports * 1e6 as in_bps, r.out_mbps / member_ports * 1e6 as out_bps,
       r.in_mbps / member_ports / ports.speed_mbps as in_utilisation,
       r.out_mbps / member_ports / ports.speed_mbps as out_utilisation,
       true as is_trusted, false as is_gap, false as is_failed_read, false as is_reset, false as is_wrap,
       false as is_over_speed, 'counters' as rate_source
from r join ports using (member_id)
order by r.ts, ports.port_id;

insert into main.fct_member_transit_usage_5min by name
select member_id, ts as interval_start, cast(ts as date) as interval_date,
       in_mbps * transit_share * 1e6 * 300 / 8 as in_bytes, out_mbps * transit_share * 0.3 * 1e6 * 300 / 8 as out_bytes,
       in_mbps * transit_share * 1e6 as in_bps, out_mbps * transit_share * 0.3 * 1e6 as out_bps,
       cast(in_mbps * transit_share * 1e6 * 300 / 8 as hugeint) as in_flow_estimated_bytes,
       cast(out_mbps * transit_share * 0.3 * 1e6 * 300 / 8 as hugeint) as out_flow_estimated_bytes,
       cast(20 as hugeint) as flow_count, true as is_scaled, false as has_prefix_attribution
from r
order by ts, member_id;

insert into main.fct_transit_usage_5min by name
with pool as (
    select interval_start, sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes
    from main.fct_member_transit_usage_5min group by 1
), contracts as (
    select contract_id, billing_timezone,
           (row_number() over (order by contract_id)) * 1.0 / sum(1) over () as weight
    from main.dim_transit_contracts
), split as (
    select contracts.contract_id, pool.interval_start, contracts.billing_timezone,
           cast(pool.in_bytes * weight / (select sum(weight) from contracts) as hugeint) as in_bytes,
           cast(pool.out_bytes * weight / (select sum(weight) from contracts) as hugeint) as out_bytes
    from pool cross join contracts
)
select contract_id, interval_start, cast(interval_start as date) as interval_date,
       cast(date_trunc('month', timezone(billing_timezone, interval_start)) as date) as billing_month,
       in_bytes, out_bytes, in_bytes + out_bytes as in_plus_out_bytes,
       in_bytes * 8.0 / 300 as in_bps, out_bytes * 8.0 / 300 as out_bps,
       2 as ports_expected, 2 as ports_with_rate, true as is_complete, true as is_billable
from split
order by interval_start, contract_id;

insert into main.fct_reconciliation_5min by name
select port_id, interval_start, interval_date, member_id,
       in_bytes as counter_in_bytes, out_bytes as counter_out_bytes,
       cast(in_bytes * (1 + 0.03 * (random() - 0.5)) as hugeint) as sflow_in_bytes,
       cast(out_bytes * (1 + 0.03 * (random() - 0.5)) as hugeint) as sflow_out_bytes,
       cast(40 as hugeint) as in_sample_count, cast(40 as hugeint) as out_sample_count,
       1 + 0.03 * (random() - 0.5) as in_ratio, 1 + 0.03 * (random() - 0.5) as out_ratio,
       random() < 0.001 as is_alarm
from main.fct_port_traffic_5min
order by interval_start, port_id;

insert into main.fct_flow_loss_5min by name
with exporters as (
    select distinct exporter_address from main.dim_ports where exporter_address is not null
), grid as (select distinct interval_start, interval_date from main.fct_member_traffic_5min)
select grid.interval_start, grid.interval_date, 'sflow5' as flow_protocol, exporter_address,
       0 as observation_domain, cast(3000 as hugeint) as datagrams_received,
       cast(case when random() < 0.01 then 3 else 0 end as hugeint) as datagrams_missing,
       cast(20000 as hugeint) as samples_received,
       cast(case when random() < 0.01 then 20 else 0 end as hugeint) as samples_missing,
       0 as exporter_datagrams_quarantined, 0.0 as datagram_loss_ratio, 0.0 as sample_loss_ratio
from grid cross join exporters
order by grid.interval_start, exporter_address;

insert into main.fct_member_traffic_daily by name
select member_id, interval_date as traffic_date, count(*) as intervals_seen, count(*) as intervals_used,
       sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes, avg(in_bps) as in_avg_bps,
       avg(out_bps) as out_avg_bps, max(in_bps) as in_max_bps, max(out_bps) as out_max_bps,
       quantile_disc(in_bps, 0.95) as in_p95_bps, quantile_disc(out_bps, 0.95) as out_p95_bps,
       sum(in_ipv4_bytes) as in_ipv4_bytes, sum(in_ipv6_bytes) as in_ipv6_bytes,
       sum(out_ipv4_bytes) as out_ipv4_bytes, sum(out_ipv6_bytes) as out_ipv6_bytes
from main.fct_member_traffic_5min group by all;

insert into main.fct_member_traffic_monthly by name
select member_id, cast(date_trunc('month', interval_start) as date) as month, count(*) as intervals_seen,
       count(*) as intervals_used, sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes,
       quantile_disc(in_bps, 0.95) as in_p95_bps, quantile_disc(out_bps, 0.95) as out_p95_bps,
       greatest(quantile_disc(in_bps, 0.95), quantile_disc(out_bps, 0.95)) as billed_p95_bps,
       cast(greatest(quantile_disc(in_bps, 0.95), quantile_disc(out_bps, 0.95)) / 1e6 as decimal(18, 4))
           as billed_p95_mbps
from main.fct_member_traffic_5min group by all;

insert into main.fct_port_traffic_daily by name
select port_id, interval_date as traffic_date, any_value(port_kind) as port_kind,
       any_value(member_id) as member_id, count(*) as intervals_seen, count(*) as intervals_used,
       sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes, avg(in_bps) as in_avg_bps,
       avg(out_bps) as out_avg_bps, max(in_bps) as in_max_bps, max(out_bps) as out_max_bps,
       quantile_disc(in_bps, 0.95) as in_p95_bps, quantile_disc(out_bps, 0.95) as out_p95_bps
from main.fct_port_traffic_5min group by all;

insert into main.fct_port_quality_monthly by name
select port_id, cast(date_trunc('month', interval_start) as date) as month,
       any_value(port_kind) as port_kind, any_value(member_id) as member_id,
       8640 as intervals_in_month, count(*) as intervals_present, count(*) as intervals_trusted,
       0 as intervals_gap, 0 as intervals_failed_read, 0 as intervals_reset, 0 as intervals_wrap,
       0 as intervals_over_speed, count(*) / 8640.0 as trusted_ratio, 0 as outage_count,
       0 as oper_down_s, 0 as unreachable_s
from main.fct_port_traffic_5min group by all;

insert into main.fct_member_transit_usage by name
select member_id, cast(date_trunc('month', interval_start) as date) as month, count(*) as intervals_used,
       sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes,
       quantile_disc(in_bps, 0.95) as in_p95_bps, quantile_disc(out_bps, 0.95) as out_p95_bps,
       greatest(quantile_disc(in_bps, 0.95), quantile_disc(out_bps, 0.95)) as billed_p95_bps,
       cast(greatest(quantile_disc(in_bps, 0.95), quantile_disc(out_bps, 0.95)) / 1e6 as decimal(18, 4))
           as billed_p95_mbps
from main.fct_member_transit_usage_5min group by all;

insert into main.fct_transit_bill_monthly by name
with p as (
    select contract_id, billing_month, count(*) as intervals_used,
           quantile_disc(in_bps, 0.95) as in_p, quantile_disc(out_bps, 0.95) as out_p,
           sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes
    from main.fct_transit_usage_5min group by all
)
select p.contract_id, p.billing_month, c.provider, c.currency, c.percentile, c.direction_rule,
       c.gap_policy, c.billing_timezone, 8640 as intervals_in_month, p.intervals_used,
       0 as intervals_incomplete, p.in_p as in_percentile_bps, p.out_p as out_percentile_bps,
       greatest(p.in_p, p.out_p) as billed_bps,
       cast(greatest(p.in_p, p.out_p) / 1e6 as decimal(18, 4)) as billed_mbps,
       c.commit_mbps, c.price_per_mbps, c.burst_price_per_mbps,
       cast(c.commit_mbps * c.price_per_mbps as decimal(18, 4)) as commit_cost,
       cast(greatest(greatest(p.in_p, p.out_p) / 1e6 - c.commit_mbps, 0) as decimal(18, 4)) as overage_mbps,
       cast(greatest(greatest(p.in_p, p.out_p) / 1e6 - c.commit_mbps, 0) * c.burst_price_per_mbps
            as decimal(18, 4)) as overage_cost,
       cast(c.commit_mbps * c.price_per_mbps + greatest(greatest(p.in_p, p.out_p) / 1e6 - c.commit_mbps, 0)
            * c.burst_price_per_mbps as decimal(18, 4)) as total_cost,
       cast((c.commit_mbps * c.price_per_mbps + greatest(greatest(p.in_p, p.out_p) / 1e6 - c.commit_mbps, 0)
            * c.burst_price_per_mbps) / nullif(greatest(p.in_p, p.out_p) / 1e6, 0) as decimal(18, 4))
           as effective_price_per_mbps,
       p.in_bytes, p.out_bytes
from p join main.dim_transit_contracts as c using (contract_id);

insert into main.fct_peering_vs_transit by name
select e.member_id, e.month, 'PLN' as currency, e.billed_p95_mbps as peered_mbps,
       t.billed_p95_mbps as transit_mbps, cast(0.8 as decimal(18, 4)) as transit_price_per_mbps,
       cast(e.billed_p95_mbps * 0.8 as decimal(18, 4)) as peered_value_at_transit_price,
       cast(1500 as decimal(18, 4)) as peering_cost,
       cast(1500 / nullif(e.billed_p95_mbps, 0) as decimal(18, 4)) as peering_cost_per_mbps,
       cast(1500 / 0.8 as decimal(18, 4)) as break_even_mbps,
       cast(e.billed_p95_mbps * 0.8 - 1500 as decimal(18, 4)) as savings
from main.fct_member_traffic_monthly as e
left join main.fct_member_transit_usage as t using (member_id, month);

insert into main.fct_member_pair_traffic_daily by name
with ranked as (
    select a.member_id as src_member_id, b.member_id as dst_member_id,
           row_number() over (partition by a.member_id order by hash(a.member_id || b.member_id)) as k
    from main.dim_members as a cross join main.dim_members as b where a.member_id <> b.member_id
)
select d.traffic_date, ranked.src_member_id, ranked.dst_member_id, 288 as intervals_seen,
       d.in_bytes * (1.0 / ranked.k) / 3.6 as bytes, d.in_bytes * (1.0 / ranked.k) / 3.6 * 0.7 as ipv4_bytes,
       d.in_bytes * (1.0 / ranked.k) / 3.6 * 0.3 as ipv6_bytes, d.in_max_bps / ranked.k as max_bps,
       cast(d.in_bytes / ranked.k / 3.6 as hugeint) as sflow_estimated_bytes,
       cast(100 as hugeint) as sample_count, true as is_scaled
from ranked join main.fct_member_traffic_daily as d on d.member_id = ranked.src_member_id
where ranked.k <= 20;

insert into main.fct_peering_candidates by name
select month, 64512 + i as remote_asn, i as traffic_rank, 1e12 / i as bytes,
       cast(1e12 / i as hugeint) as flow_estimated_bytes, cast(1000.0 / i as decimal(18, 4)) as avg_mbps,
       i % 4 as peeringdb_exchange_count, []::varchar[] as peeringdb_exchanges, i % 4 > 0 as is_in_peeringdb,
       cast(0.8 as decimal(18, 4)) as transit_price_per_mbps,
       cast(800.0 / i as decimal(18, 4)) as saving_if_peered
from (select distinct month from main.fct_member_traffic_monthly) cross join range(1, 501) as t(i);

insert into main.fct_port_outages by name
select port_id, 'oper_down' as cause, start_at, start_at + interval 20 minute as end_at, false as is_ongoing,
       1200 as duration_s, device_id, port_kind, member_id, site_id
from (select *, (select min(interval_start) from main.fct_member_traffic_5min)
                + to_days(cast(hash(port_id) % 365 as integer)) as start_at from main.dim_ports);

insert into main.fct_unknown_macs_daily by name
select traffic_date, '10.255.0.1' as exporter_address, 0 as vlan, '02:00:00:00:00:0' || (i % 9) as mac,
       'in' as direction, cast(10 as hugeint) as sample_count, cast(1e6 as hugeint) as estimated_bytes,
       1 as intervals_seen, cast(traffic_date as timestamptz) as first_seen_at,
       cast(traffic_date as timestamptz) as last_seen_at
from (select distinct traffic_date from main.fct_member_traffic_daily) cross join range(0, 3) as t(i);

insert into main.fct_reconciliation_hourly by name
select time_bucket(interval '1 hour', interval_start) as hour_start, interval_date,
       count(distinct port_id) as ports, count(*) as port_intervals,
       count(*) filter (where is_alarm) as alarm_intervals,
       sum(counter_in_bytes) as counter_in_bytes, sum(counter_out_bytes) as counter_out_bytes,
       sum(sflow_in_bytes) as sflow_in_bytes, sum(sflow_out_bytes) as sflow_out_bytes,
       sum(in_sample_count) as in_sample_count, sum(out_sample_count) as out_sample_count,
       cast(sum(sflow_in_bytes) as double) / nullif(sum(counter_in_bytes), 0) as in_ratio,
       cast(sum(sflow_out_bytes) as double) / nullif(sum(counter_out_bytes), 0) as out_ratio
from main.fct_reconciliation_5min group by 1, 2;

insert into main.fct_pooling_dividend_monthly by name
with pool as (
    select interval_start, sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes
    from main.fct_member_transit_usage_5min group by 1
), pool_monthly as (
    select cast(date_trunc('month', interval_start) as date) as month, count(*) as pool_intervals,
           greatest(quantile_disc(in_bytes, 0.95), quantile_disc(out_bytes, 0.95)) * 8.0 / 300 / 1e6 as pool_p95_mbps
    from pool group by 1
), members as (
    select month, count(*) as members_counted, sum(billed_p95_bps) / 1e6 as sum_of_member_p95_mbps
    from main.fct_member_transit_usage group by 1
)
select month, members_counted, pool_intervals, sum_of_member_p95_mbps, pool_p95_mbps,
       sum_of_member_p95_mbps - pool_p95_mbps as dividend_mbps
from members join pool_monthly using (month);

insert into main.fct_exchange_traffic_daily by name
with per_interval as (
    select interval_start, interval_date, count(*) as members, sum(in_bytes) as in_bytes,
           sum(out_bytes) as out_bytes, sum(in_bps) as in_bps
    from main.fct_member_traffic_5min group by 1, 2
), transit as (
    select interval_date, sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes,
           greatest(quantile_disc(in_bps, 0.95), quantile_disc(out_bps, 0.95)) as p95_bps
    from main.fct_transit_usage_5min group by 1
)
select p.interval_date as traffic_date, max(p.members) as members_counted, false as is_exchange_suppressed,
       count(*) as exchange_intervals, sum(p.in_bytes) as exchange_in_bytes,
       sum(p.out_bytes) as exchange_out_bytes, avg(p.in_bps) as exchange_avg_bps,
       quantile_disc(p.in_bps, 0.95) as exchange_p95_bps, max(p.in_bps) as exchange_max_bps,
       max(p.members) as transit_members_counted, false as is_transit_suppressed,
       any_value(t.in_bytes) as transit_in_bytes, any_value(t.out_bytes) as transit_out_bytes,
       any_value(t.p95_bps) as transit_p95_bps
from per_interval as p left join transit as t using (interval_date) group by p.interval_date;

insert into main.fct_exchange_traffic_monthly by name
with per_interval as (
    select interval_start, count(*) as members, sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes,
           sum(in_bps) as in_bps
    from main.fct_member_traffic_5min group by 1
), bills as (
    select billing_month as month, sum(billed_mbps) as billed_mbps, sum(commit_mbps) as commit_mbps,
           sum(total_cost) as total_cost
    from main.fct_transit_bill_monthly group by 1
), transit as (
    select cast(date_trunc('month', interval_start) as date) as month, sum(in_bytes) as in_bytes,
           sum(out_bytes) as out_bytes
    from main.fct_transit_usage_5min group by 1
)
select m.month, m.members as members_counted, false as is_exchange_suppressed, m.in_bytes as exchange_in_bytes,
       m.out_bytes as exchange_out_bytes, cast(m.p95 / 1e6 as decimal(18, 4)) as exchange_p95_mbps,
       cast(m.peak / 1e6 as decimal(18, 4)) as exchange_max_mbps, m.members as transit_members_counted,
       false as is_transit_suppressed, transit.in_bytes as transit_in_bytes, transit.out_bytes as transit_out_bytes,
       'PLN' as currency, bills.billed_mbps as transit_billed_mbps, bills.commit_mbps as transit_commit_mbps,
       bills.total_cost as pool_transit_cost,
       cast(bills.total_cost / nullif(bills.billed_mbps, 0) as decimal(18, 4)) as pooled_price_per_mbps
from (
    select cast(date_trunc('month', interval_start) as date) as month, max(members) as members,
           sum(in_bytes) as in_bytes, sum(out_bytes) as out_bytes, quantile_disc(in_bps, 0.95) as p95,
           max(in_bps) as peak
    from per_interval group by 1
) as m left join bills using (month) left join transit using (month);

insert into main.fct_member_transit_bill_share_monthly by name
with pool as (select billing_month as month, sum(total_cost) as total from main.fct_transit_bill_monthly group by 1),
weights as (
    select u.member_id, u.month, u.billed_p95_mbps, sum(u.billed_p95_mbps) over (partition by u.month) as total_weight,
           count(*) over (partition by u.month) as members_sharing
    from main.fct_member_transit_usage as u
)
select w.member_id, w.month,
       case when w.month = (select max(month) from weights) then 'preview' else 'final' end as document_status,
       w.month <> (select max(month) from weights) as is_invoice_basis, 'proportional_p95' as allocation_method,
       'PLN' as currency, cast(pool.total * w.billed_p95_mbps / w.total_weight as decimal(18, 4)) as transit_share,
       w.billed_p95_mbps as own_transit_p95_mbps, cast(w.billed_p95_mbps as varchar) as allocation_weight,
       'Mbps' as allocation_weight_unit, false as got_left_over_grosz, pool.total as pool_total,
       cast(w.total_weight as varchar) as total_allocation_weight, w.members_sharing,
       strftime(w.month, '%Y-%m') || '/final' as document, sha256(w.member_id || w.month) as manifest_sha256,
       sha256(cast(w.month as varchar)) as bill_serving_sha256
from weights as w join pool using (month);

insert into main.fct_tender_scenarios by name
select i as scenario_rank, 'scenario ' || i as scenario, 1 + i % 3 as provider_count,
       'A ' || (1000 * i) || '; B ' || (500 * i) as commits,
       cast(100000 + 1000 * i as decimal(18, 4)) as expected_monthly_cost,
       cast(1200000 + 12000 * i as decimal(18, 4)) as expected_total_cost,
       cast(1300000 + 12000 * i as decimal(18, 4)) as cost_p95_total,
       cast(0.8 + 0.01 * i as decimal(18, 4)) as effective_price_per_mbps, 'PLN' as currency,
       'WAW 60%; KRK 40%' as site_loads, '' as notes, date '2027-01-01' as plan_start_month,
       12 as horizon_months, 'A' as reference_offer, 'bench' as run_id, sha256('bench') as report_sha256
from range(1, 13) as t(i);

insert into main.fct_tender_scenario_providers by name
select s.scenario_rank, s.scenario, p.provider, cast(100 / s.provider_count as bigint) as share_percent,
       cast(1000 * s.scenario_rank as decimal(18, 4)) as commit_mbps,
       s.expected_monthly_cost as scenario_expected_monthly_cost, s.run_id
from main.fct_tender_scenarios as s
cross join (select unnest(['A', 'B', 'C']) as provider) as p;

insert into main.fct_tender_commits by name
select i as offer_rank, chr(cast(64 + i as integer)) as provider, cast(5000 * i as decimal(18, 4)) as commit_mbps,
       cast(0.7 + 0.05 * i as decimal(18, 4)) as tier_price_per_mbps,
       cast(1.2 as decimal(18, 4)) as burst_price_per_mbps, 12 as months,
       cast(90000 + 5000 * i as decimal(18, 4)) as expected_monthly_cost,
       cast(1080000 + 60000 * i as decimal(18, 4)) as expected_total_cost,
       cast(1150000 + 60000 * i as decimal(18, 4)) as cost_p95_total, 0.05 as overage_probability,
       0.2 as worst_month_overage_probability, cast(1000 as decimal(18, 4)) as expected_overage_cost,
       cast(0.8 as decimal(18, 4)) as effective_price_per_mbps, 'bench' as run_id
from range(1, 6) as t(i);
