-- The member whose configured prefix holds an address (longest prefix wins).
select
    addresses.ip,
    prefixes.member_id,
    prefixes.prefix,
    prefixes.prefix_length
from {{ ref('int_ip_addresses_parsed') }} as addresses
inner join {{ ref('stg_reference__member_prefixes') }} as prefixes
    on addresses.ip_version = prefixes.ip_version
   and addresses.ip_hi between prefixes.first_hi and prefixes.last_hi
   and addresses.ip_lo between prefixes.first_lo and prefixes.last_lo
where addresses.ip_hi is not null and addresses.ip_lo is not null
qualify row_number() over (partition by addresses.ip order by prefixes.prefix_length desc, prefixes.member_id) = 1
