"""The recops operator: typed custom resources, renderers of Kubernetes objects, Kopf handlers."""
