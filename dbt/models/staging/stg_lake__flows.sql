with

source as (
    {{ lake_source('lake', 'flows') }}
),

renamed as (
    select
        received_at,
        {{ interval_5min('coalesce(flow_end, received_at)') }} as interval_start,
        cast({{ interval_5min('coalesce(flow_end, received_at)') }} as date) as interval_date,
        flow_protocol,
        exporter_address,
        observation_domain,
        sampling_rate,
        input_ifindex,
        output_ifindex,
        vlan,
        ip_version,
        src_ip,
        dst_ip,
        ip_protocol,
        bytes as sampled_bytes,
        packets as sampled_packets,
        estimated_bytes,
        estimated_packets,
        flow_start as flow_start_at,
        flow_end as flow_end_at,
        src_member_id,
        dst_member_id,
        src_port_id,
        dst_port_id,
        src_asn,
        dst_asn,
        source_file,
        partition_date
    from source
)

select * from renamed
