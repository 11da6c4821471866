{#- The billing percentile: nearest rank, k = ceil(pct/100 * n), 1-based, over the non-null values.
    DuckDB's quantile_disc picks exactly that element for every n (checked for n = 1..400 and the
    month sizes 8052..8940 against ceil(0.95 n)); quantile_cont interpolates and must never bill.
    `pct` is a whole-number percentile (95) or a column holding one. -#}
{% macro billing_percentile(column, pct) -%}
    quantile_disc({{ column }}, ({{ pct }}) / 100.0)
{%- endmacro %}
