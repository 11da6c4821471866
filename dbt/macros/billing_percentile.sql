{#- The billing percentile: nearest rank, k = ceil(pct/100 * n), 1-based, over the non-null values
    of `column` (restricted by the SQL condition `where` when given).
    With a constant `pct` this is DuckDB's quantile_disc, which picks exactly that element for
    every n (checked for n = 1..400 and every month size 8052..8940 against ceil(0.95 n), and in
    the unit tests). quantile_cont interpolates and must never bill.
    When `pct` is a column (a contract's own percentile), quantile_disc refuses a non-constant
    fraction, so the rank is computed in integers: k = (pct * n + 99) // 100 on the sorted list. -#}
{% macro billing_percentile(column, pct, where=none) -%}
    {%- set condition = '(' ~ column ~ ') is not null' ~ ((' and (' ~ where ~ ')') if where else '') -%}
    {%- if pct is number -%}
        quantile_disc({{ column }}, {{ pct }} / 100.0) filter (where {{ condition }})
    {%- else -%}
        (case when count(*) filter (where {{ condition }}) = 0 then null
              else list_sort(list({{ column }}) filter (where {{ condition }}))[
                  ((({{ pct }}) * count(*) filter (where {{ condition }}) + 99) // 100)::bigint]
         end)
    {%- endif -%}
{%- endmacro %}
