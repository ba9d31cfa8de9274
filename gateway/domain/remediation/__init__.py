"""Safe remediation: plans (what to do per VM), policy (who decides), guards (when not to act).

Pure code: no Flask, Celery, Redis or pyone. The tasks in `tasks/remediate.py` feed it live
objects read through the OpenNebula client and carry out what it decides.
"""
