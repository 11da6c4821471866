-- Each provider of each scenario of the newest tender report: its share of the traffic (whole
-- percent, as the scenario's name shows it) and its optimal commit at that share.
select
    providers.scenario_rank,
    providers.scenario,
    providers.provider,
    providers.share_percent,
    providers.commit_mbps,
    scenarios.expected_monthly_cost as scenario_expected_monthly_cost,
    providers.run_id
from {{ ref('stg_exports__tender_scenario_providers') }} as providers
left join {{ ref('stg_exports__tender_scenarios') }} as scenarios using (run_id, scenario_rank)
