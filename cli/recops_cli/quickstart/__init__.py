"""`recops quickstart`: the whole lifecycle on one machine, composed from the CLI stages.

Each stage runs the same command the operator's Jobs and Pods run on a cluster
(`recops train`, `recops compile`, `recops serve`, `recops loadtest`,
`recops rollout`), as a child process with its output kept in the work folder.
"""
