{#- The first UTC date an incremental run recomputes, as a DATE literal, or none for a full build.
    `since` (var) wins; otherwise the newest `date_column` already in this model minus
    `lookback_days`, so late data for the last days is picked up. Rows on and after it are
    deleted and inserted again (delete+insert by day), so re-running never duplicates. -#}
{% macro incremental_start(date_column='interval_date') -%}
    {%- if not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if var('since', '') -%}
        {{ return("date '" ~ var('since') ~ "'") }}
    {%- endif -%}
    {%- if execute -%}
        {%- set result = run_query("select cast(max(" ~ date_column ~ ") - to_days(" ~ (var('lookback_days') | int) ~ ") as date) from " ~ this) -%}
        {%- set newest = result.columns[0].values()[0] -%}
        {%- if newest is none -%}
            {{ return(none) }}
        {%- endif -%}
        {{ return("date '" ~ newest ~ "'") }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#- A WHERE condition: `column >= start - slack_days` on incremental runs, true otherwise. -#}
{% macro incremental_filter(column, date_column='interval_date', slack_days=0) -%}
    {%- set start = incremental_start(date_column) -%}
    {%- if start is none -%}
        true
    {%- else -%}
        {{ column }} >= {{ start }} - to_days({{ slack_days }})
    {%- endif -%}
{%- endmacro %}
