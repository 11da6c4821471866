{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='interval_date') }}
-- The sFlow matrix per interval, port pair and IP version (exporters, VLANs and part files summed).
select
    interval_start,
    interval_date,
    src_port_id,
    dst_port_id,
    src_member_id,
    dst_member_id,
    ip_version,
    sum(estimated_bytes) as estimated_bytes,
    sum(estimated_packets) as estimated_packets,
    sum(sample_count) as sample_count
from {{ ref('stg_lake__member_matrix') }}
where {{ incremental_filter('partition_date', slack_days=1) }}
  and {{ incremental_filter('interval_date') }}
group by all
