-- IP addresses seen on border-router flows as two unsigned 64-bit halves (IPv4 in the low half),
-- to match member prefixes (stg_reference__member_prefixes) without an IP extension.
with

addresses as (
    select distinct src_ip as ip from {{ ref('int_border_flows_classified') }} where src_ip is not null
    union
    select distinct dst_ip as ip from {{ ref('int_border_flows_classified') }} where dst_ip is not null
),

split as (
    select
        ip,
        case when ip like '%:%' and ip not like '%.%' then 6 when ip like '%.%.%.%' and ip not like '%:%' then 4 end
            as ip_version,
        lower(split_part(ip, '::', 1)) as left_part,
        case when ip like '%::%' then lower(split_part(ip, '::', 2)) end as right_part,
        ip like '%::%' as is_compressed
    from addresses
),

groups as (
    select
        ip,
        ip_version,
        case
            when ip_version = 4 then null
            when not is_compressed then string_split(left_part, ':')
            else
                (case when left_part = '' then []::varchar[] else string_split(left_part, ':') end)
                || list_transform(
                    range(8 - len(case when left_part = '' then []::varchar[] else string_split(left_part, ':') end)
                            - len(case when right_part = '' then []::varchar[] else string_split(right_part, ':') end)),
                    lambda x: '0')
                || (case when right_part = '' then []::varchar[] else string_split(right_part, ':') end)
        end as v6_groups
    from split
    where ip_version is not null
),

hex as (
    select
        ip,
        ip_version,
        case when ip_version = 6 and len(v6_groups) = 8
            then array_to_string(list_transform(v6_groups, lambda g: lpad(g, 4, '0')), '') end as v6_hex
    from groups
)

select
    ip,
    ip_version,
    case when ip_version = 4 then 0::ubigint else try_cast('0x' || substr(v6_hex, 1, 16) as ubigint) end as ip_hi,
    case
        when ip_version = 4 then
            try_cast(split_part(ip, '.', 1) as ubigint) * 16777216
            + try_cast(split_part(ip, '.', 2) as ubigint) * 65536
            + try_cast(split_part(ip, '.', 3) as ubigint) * 256
            + try_cast(split_part(ip, '.', 4) as ubigint)
        else try_cast('0x' || substr(v6_hex, 17, 16) as ubigint)
    end as ip_lo
from hex
