output "get_credentials" {
  description = "Command that points kubectl at the new cluster."
  value       = "gcloud container clusters get-credentials ${google_container_cluster.recops.name} --region ${var.region} --project ${var.project_id}"
}

output "mlflow_tracking_uri" {
  description = "MLflow tracking URI inside the cluster."
  value       = module.recops_platform.mlflow_tracking_uri
}

output "grafana_admin_password" {
  description = "Grafana's admin password (user admin)."
  value       = module.recops_platform.grafana_admin_password
  sensitive   = true
}

output "gateway" {
  description = "The Gateway that carries the recommenders' gRPC traffic."
  value       = module.recops_platform.gateway
}
