"""The smart patrol through the API: alerts, silences, work orders, rules, rounds, 巡课."""
