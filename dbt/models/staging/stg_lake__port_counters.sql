with

source as (
    {{ lake_source('lake', 'port_counters') }}
),

renamed as (
    select
        polled_at,
        cast(polled_at as date) as polled_date,
        source as counter_source,
        device_id,
        device_address,
        ifindex,
        port_id,
        ok as is_ok,
        error as error_message,
        sys_uptime_cs,
        counter_bits,
        in_octets,
        out_octets,
        if_high_speed_mbps,
        if_oper_status,
        source_file,
        partition_date
    from source
)

select * from renamed
