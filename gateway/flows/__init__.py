"""Orchestration: the order of steps from an event to a message or an action, in one place.

- `incident.py` — an event becomes an incident (load → decide → save → route), a due group
  becomes messages (load → mute → plan the flush → compose → outbox), escalations.
- `delivery.py` — one message to one receiver: wait for the one before it, then per URL claim →
  render in the receiver's language → send → record.
- `remediation/` — planning → grace and storm guard → approval or policy → execution →
  verification, each a module of named stages; what they tell people is a notice on the
  incident (`IncidentFlow.add_notice`), told with the incident's story after its alert.

Every message is composed by `gateway/domain/composer.py` and leaves through the incident
repository's outbox. Adapters do the I/O; the domain decides; flows say in which order.
"""
