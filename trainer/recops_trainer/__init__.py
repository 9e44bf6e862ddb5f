"""The recops trainer: data, SSE-PT model, training, tuning, evaluation, tracking, export."""
