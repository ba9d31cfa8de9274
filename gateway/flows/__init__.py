"""Orchestration: the order of steps from an event to a message or an action, in one place.

- `remediation/` — planning, approval, execution and verification of remediation plans, each a
  module of named stages; what they tell people goes to the incident as a notice
  (`IncidentStore.add_notice`) and leaves with the incident's story (`gateway/domain/composer.py`
  composes every message; the incident store's outbox sends them).

Adapters (stores, OpenNebula, notifier) do the I/O; the domain decides; flows say in which order.
"""
