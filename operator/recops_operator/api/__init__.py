"""The recops.io/v1alpha1 API: typed models of RecModel, TrainingRun and Rollout."""
