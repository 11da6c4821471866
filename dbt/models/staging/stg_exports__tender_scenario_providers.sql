-- Each provider of each scenario of the newest tender report: its share of the traffic and commit.
with

source as (
    {{ lake_source('exports', 'tender_scenario_providers') }}
),

renamed as (
    select run_id, scenario_rank, scenario, provider, share_percent, commit_mbps
    from source
)

select * from renamed
