output "mlflow_tracking_uri" {
  description = "MLflow tracking URI inside the cluster (set it as a RecModel's spec.mlflow.trackingUri)."
  value       = local.mlflow_tracking_uri
}

output "prometheus_url" {
  description = "Prometheus URL inside the cluster, queried by rollout analysis."
  value       = local.prometheus_url
}

output "grafana_admin_password" {
  description = "Grafana's admin password (user admin)."
  value       = local.grafana_admin_password
  sensitive   = true
}

output "gateway" {
  description = "Namespace and name of the Gateway that carries the recommenders' gRPC traffic."
  value       = { namespace = var.gateway_namespace, name = var.gateway_name }
}

output "recops_namespace" {
  description = "Namespace of the recops operator."
  value       = helm_release.recops.namespace
}
