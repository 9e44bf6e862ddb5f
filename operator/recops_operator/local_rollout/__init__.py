"""`recops rollout`: a canary on one machine, no Kubernetes.

The rollout engine (``rollout/``) drives the runtime's weighted router through its admin
API, measured by an analysis provider; ``cli.py`` is the command, ``driver.py`` the loop
and its JSON decision log.
"""
