# Namespaces

variable "recops_namespace" {
  type        = string
  description = "Namespace of the recops operator release."
  default     = "recops-system"
}

variable "model_namespaces" {
  type        = list(string)
  description = "Namespaces that will hold RecModels; each gets the engine artifacts volume claim."
  default     = ["recommenders"]
}

variable "kuberay_namespace" {
  type        = string
  description = "Namespace of the KubeRay operator (it runs the RayJobs of TrainingRuns)."
  default     = "kuberay-system"
}

variable "monitoring_namespace" {
  type        = string
  description = "Namespace of the Prometheus stack (Prometheus operator, Prometheus, Grafana)."
  default     = "monitoring"
}

variable "gateway_namespace" {
  type        = string
  description = "Namespace of the Gateway API implementation and of the Gateway that GRPCRoutes attach to."
  default     = "gateway-system"
}

variable "mlflow_namespace" {
  type        = string
  description = "Namespace of the MLflow tracking server and its database."
  default     = "mlflow"
}

# Chart versions of the add-ons

variable "kuberay_chart_version" {
  type        = string
  description = "Version of the kuberay-operator chart (ray-project/kuberay-helm)."
  default     = "1.4.2"
}

variable "kube_prometheus_stack_chart_version" {
  type        = string
  description = "Version of the kube-prometheus-stack chart (prometheus-community)."
  default     = "77.0.0"
}

variable "envoy_gateway_chart_version" {
  type        = string
  description = "Version of Envoy Gateway's gateway-helm chart; it installs the Gateway API CRDs too."
  default     = "v1.5.0"
}

variable "mlflow_chart_version" {
  type        = string
  description = "Version of the mlflow chart (community-charts)."
  default     = "1.12.0"
}

variable "postgresql_chart_version" {
  type        = string
  description = "Version of the Bitnami postgresql chart used when mlflow_database is null."
  default     = "16.7.27"
}

# recops

variable "recops_chart" {
  type        = string
  description = "Path or OCI reference of the recops chart; empty uses charts/recops of this repository."
  default     = ""
}

variable "recops_image_registry" {
  type        = string
  description = "Registry and namespace of the recops images (recops-operator, recops-runtime, ...)."
  default     = "ghcr.io/recops"
}

variable "recops_image_tag" {
  type        = string
  description = "Tag of every recops image; empty uses the chart's appVersion."
  default     = ""
}

variable "operator_replicas" {
  type        = number
  description = "Operator replicas: 1 runs standalone, 2 form a highly available pair through Kopf peering."
  default     = 2

  validation {
    condition     = var.operator_replicas >= 1 && var.operator_replicas <= 3
    error_message = "operator_replicas must be 1, 2 or 3."
  }
}

variable "artifacts_storage_class" {
  type        = string
  description = "ReadWriteMany storage class of the engine artifacts claims (compile Jobs write, serving pods read)."
  default     = ""
}

variable "artifacts_size" {
  type        = string
  description = "Size of each engine artifacts claim."
  default     = "20Gi"
}

variable "feedback_size" {
  type        = string
  description = "Size of each serving feedback claim (same storage class as the artifacts); empty: no feedback volume, feedback does not reach training."
  default     = "10Gi"
}

variable "gpu_node_selector" {
  type        = map(string)
  description = "Node selector of GPU serving pods and GPU training workers (for example the GPU model's label)."
  default     = {}
}

variable "gpu_tolerations" {
  type = list(object({
    key      = string
    operator = string
    value    = optional(string)
    effect   = string
  }))
  description = "Tolerations of GPU serving pods and GPU training workers (match the GPU node pool's taints)."
  default     = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]
}

variable "recops_values" {
  type        = any
  description = "Extra values for the recops chart, merged over what this module sets."
  default     = {}
}

# Gateway

variable "gateway_name" {
  type        = string
  description = "Name of the Gateway the operator attaches its GRPCRoutes to."
  default     = "recops-gateway"
}

variable "gateway_port" {
  type        = number
  description = "Port of the Gateway's plaintext gRPC (HTTP/2) listener."
  default     = 80
}

# MLflow

variable "mlflow_database" {
  type = object({
    host     = string
    port     = optional(number, 5432)
    database = string
    user     = string
    password = string
  })
  description = "An existing PostgreSQL database for MLflow (for example Cloud SQL); null runs PostgreSQL in the cluster."
  default     = null
  sensitive   = true
}

variable "mlflow_artifacts_bucket" {
  type        = string
  description = "GCS bucket for MLflow artifacts (models, engines); empty keeps them on the server's volume."
  default     = ""
}

variable "mlflow_service_account_annotations" {
  type        = map(string)
  description = "Annotations of MLflow's service account, for example Workload Identity for the artifacts bucket."
  default     = {}
}

# Grafana

variable "grafana_admin_password" {
  type        = string
  description = "Grafana's admin password; null generates one (read it from the output)."
  default     = null
  sensitive   = true
}
