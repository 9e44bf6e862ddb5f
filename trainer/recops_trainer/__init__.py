"""The recops trainer: data pipeline, SSE-PT model, training, tuning, evaluation, MLflow tracking, export."""
