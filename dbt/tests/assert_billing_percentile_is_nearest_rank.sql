-- The billing_percentile macro against the rule written out in integers: for every n from 1 to
-- 300, n = 8611, and every month size (28..31 days, with the DST +-12) and the percentiles
-- 90, 95, 98, 99, the value picked from
-- 1..n must be k = ceil(pct * n / 100) = (pct * n + 99) // 100, through both code paths
-- (constant percentile -> quantile_disc; percentile from a column -> sorted list).
with

sizes as (
    select n, pct
    from (
        select unnest(range(1, 301)) as n
        union all
        select unnest([8052, 8064, 8076, 8611, 8628, 8640, 8652, 8916, 8928, 8940])
    ) as s
    cross join (values (90), (95), (98), (99)) as p(pct)
),

values_ as (
    select sizes.n, sizes.pct, v.x
    from sizes, lateral (select unnest(range(1, sizes.n + 1)) as x) as v
),

picked as (
    select
        n,
        pct,
        {{ billing_percentile('x', 'pct') }} as from_column,
        case pct
            when 90 then {{ billing_percentile('x', 90) }}
            when 95 then {{ billing_percentile('x', 95) }}
            when 98 then {{ billing_percentile('x', 98) }}
            when 99 then {{ billing_percentile('x', 99) }}
        end as from_constant
    from values_
    group by n, pct
)

select *
from picked
where from_column <> (pct * n + 99) // 100
   or from_constant <> (pct * n + 99) // 100
