"""Safe remediation: plans (what to do per VM), policy (who decides), guards (when not to act).

Pure code: no Flask, Celery, Redis or pyone. `gateway/flows/remediation/` feeds it live
objects read through the OpenNebula client and carries out what it decides.
"""
