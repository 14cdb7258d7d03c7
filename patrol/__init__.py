"""The smart patrol (智能巡检): rules over every device, alerts, routing, notices, work orders, rounds.

Public functions for the API live in `patrol.alerts` (list, acknowledge, silence),
`patrol.workorders`, `patrol.report` and `patrol.engine` (one evaluation cycle).
"""
