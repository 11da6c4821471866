{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- Loss per exporter (agent / observation domain) and 5-minute interval from sequence numbers,
-- with the datagrams of that exporter quarantined as undecodable in the same interval
-- (per exporter: repeated on each observation domain's row, not to be summed across domains).
with

loss as (
    select
        interval_start,
        interval_date,
        flow_protocol,
        exporter_address,
        observation_domain,
        sum(datagrams_received) as datagrams_received,
        sum(datagrams_missing) as datagrams_missing,
        sum(samples_received) as samples_received,
        sum(samples_missing) as samples_missing
    from {{ ref('stg_lake__flow_loss') }}
    where {{ incremental_filter('partition_date', slack_days=1) }} and {{ incremental_filter('interval_date') }}
    group by all
),

quarantined as (
    select interval_start, flow_protocol, exporter_address, count(*) as datagrams_quarantined
    from {{ ref('stg_lake__quarantine') }}
    where {{ incremental_filter('partition_date', slack_days=1) }} and {{ incremental_filter('interval_date') }}
    group by all
)

select
    loss.*,
    coalesce(quarantined.datagrams_quarantined, 0) as exporter_datagrams_quarantined,
    loss.datagrams_missing * 1.0 / nullif(loss.datagrams_received + loss.datagrams_missing, 0) as datagram_loss_ratio,
    loss.samples_missing * 1.0 / nullif(loss.samples_received + loss.samples_missing, 0) as sample_loss_ratio
from loss
left join quarantined
    on quarantined.interval_start = loss.interval_start
   and quarantined.flow_protocol = loss.flow_protocol
   and quarantined.exporter_address = loss.exporter_address
