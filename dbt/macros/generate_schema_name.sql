{#- Marts live in `main` (what dashboards and users query); staging and intermediate in their own
    schemas, named exactly as configured instead of dbt's "<target>_<custom>" default. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
