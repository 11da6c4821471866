{#- Exact arithmetic for anything that ends on a bill. DuckDB divides DECIMALs in DOUBLE, so
    division goes through 128-bit integers with half-up rounding to 4 decimal places. -#}

{#- a / b rounded half away from zero to DECIMAL(18,4); null when b is null or zero.
    Both operands are first rounded to 4 decimals (they are DECIMAL(18,4) money or Mbps). -#}
{% macro divide_money(numerator, denominator) -%}
    (case when ({{ denominator }}) is null or ({{ denominator }}) = 0 or ({{ numerator }}) is null then null
     else cast(
        cast(
            sign(cast(round(({{ numerator }}) * 10000) as hugeint)) * sign(cast(round(({{ denominator }}) * 10000) as hugeint))
            * ((2 * abs(cast(round(({{ numerator }}) * 10000) as hugeint)) * 10000
                + abs(cast(round(({{ denominator }}) * 10000) as hugeint)))
               // (2 * abs(cast(round(({{ denominator }}) * 10000) as hugeint))))
        as decimal(38, 0)) * 0.0001::decimal(18, 4)
     as decimal(18, 4)) end)
{%- endmacro %}

{#- Mbps of a 5-minute byte count: bytes * 8 / 300 / 1e6 = bytes / 37 500 000, exact to 4 decimals
    (half up). -#}
{% macro bytes_to_mbps(bytes) -%}
    (case when ({{ bytes }}) is null then null
     else cast(cast((2 * cast({{ bytes }} as hugeint) * 10000 + 37500000) // 75000000 as decimal(38, 0))
               * 0.0001::decimal(18, 4) as decimal(18, 4)) end)
{%- endmacro %}

{#- a * b (DECIMALs, exact in DuckDB) rounded half away from zero to DECIMAL(18,4). -#}
{% macro multiply_money(a, b) -%}
    cast(round(cast({{ a }} as decimal(18, 4)) * cast({{ b }} as decimal(18, 4)), 4) as decimal(18, 4))
{%- endmacro %}
