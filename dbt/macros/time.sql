{#- Start of the 5-minute interval holding `ts` (UTC), independent of the session time zone. -#}
{% macro interval_5min(ts) -%}
    to_timestamp((epoch_us({{ ts }}) // 300000000) * 300)
{%- endmacro %}

{#- Local wall-clock timestamp of a UTC instant in time zone `tz` (a column or a quoted literal). -#}
{% macro local_time(ts, tz) -%}
    timezone({{ tz }}, {{ ts }})
{%- endmacro %}

{#- First day of the month (a DATE) holding `ts` in time zone `tz`. -#}
{% macro local_month(ts, tz) -%}
    cast(date_trunc('month', timezone({{ tz }}, {{ ts }})) as date)
{%- endmacro %}

{#- The exchange's billing time zone (reference `billing`), or the project default. -#}
{% macro exchange_timezone() -%}
    coalesce((select max(timezone) from {{ ref('stg_reference__billing') }}), '{{ var("default_timezone") }}')
{%- endmacro %}
