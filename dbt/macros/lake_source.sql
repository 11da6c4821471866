{#- Read a lake table (a dbt source) as SQL with the columns and types declared in its sources
    YAML. The files are `PEERPOOL_LAKE/<meta.lake_glob>` read with hive partitioning and
    union_by_name (so a part written before a column was added still reads). When no file exists
    yet the result is an empty, typed relation: an empty lake builds to empty marts.
    The source() call records lineage; the SQL itself is generated here. -#}
{% macro lake_source(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set node = graph.sources['source.' ~ project_name ~ '.' ~ source_name ~ '.' ~ table_name] if execute else none -%}
    {%- if node is none -%}
        select null as placeholder where false
    {%- else -%}
        {%- set lake = env_var('PEERPOOL_LAKE', 'lake') | replace("'", "''") -%}
        {%- set pattern = lake ~ '/' ~ node.meta['lake_glob'] -%}
        {%- set found = run_query("select count(*) as files, count(*) filter (where file like '%/date=%') as dated from glob('" ~ pattern ~ "')") -%}
        {%- set files = found.columns[0].values()[0] -%}
        {%- set dated = found.columns[1].values()[0] -%}
        {%- set columns = node.columns.values() | list -%}
        {%- if files == 0 %}
    select
        {%- for col in columns %}
        cast(null as {{ col.data_type }}) as {{ adapter.quote(col.name) }},
        {%- endfor %}
        cast(null as date) as partition_date
    where false
        {%- else %}
    select
        {%- for col in columns %}
        cast({{ adapter.quote(col.name) }} as {{ col.data_type }}) as {{ adapter.quote(col.name) }},
        {%- endfor %}
        {% if dated == files -%} cast("date" as date) {%- else -%} cast(null as date) {%- endif %} as partition_date
    from read_parquet('{{ pattern }}', hive_partitioning = {{ 'true' if dated == files else 'false' }}, union_by_name = true)
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
