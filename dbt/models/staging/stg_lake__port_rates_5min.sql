with

source as (
    {{ lake_source('lake', 'port_rates_5min') }}
),

renamed as (
    select
        interval_start,
        cast(interval_start as date) as interval_date,
        port_id,
        device_id,
        ifindex,
        speed_mbps,
        in_bytes,
        out_bytes,
        in_packets,
        out_packets,
        in_bps,
        out_bps,
        coalesce(is_trusted, false) as is_trusted,
        coalesce(is_gap, false) as is_gap,
        coalesce(is_failed_read, false) as is_failed_read,
        coalesce(is_reset, false) as is_reset,
        coalesce(is_wrap, false) as is_wrap,
        coalesce(is_over_speed, false) as is_over_speed,
        source as rate_source,
        partition_date
    from source
)

select * from renamed
