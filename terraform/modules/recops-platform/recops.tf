locals {
  recops_chart = var.recops_chart != "" ? var.recops_chart : "${path.module}/../../../charts/recops"
  recops_images = {
    for key, name in {
      operator   = "recops-operator"
      runtimeCpu = "recops-runtime"
      runtimeGpu = "recops-runtime-gpu"
      trainer    = "recops-trainer"
    } : key => { repository = "${var.recops_image_registry}/${name}", tag = var.recops_image_tag }
  }
  # What the operator needs to find every add-on above.
  recops_module_values = {
    images = local.recops_images
    operator = {
      replicas = var.operator_replicas
    }
    runtime = {
      gpu = {
        nodeSelector = var.gpu_node_selector
        tolerations  = [for t in var.gpu_tolerations : { for k, v in t : k => v if v != null }]
      }
    }
    artifacts = {
      createIn         = var.model_namespaces
      size             = var.artifacts_size
      storageClassName = var.artifacts_storage_class
    }
    # Serving pods log clicks and views here; training reads them as new interactions.
    feedback = {
      claimName        = var.feedback_size != "" ? "recops-feedback" : ""
      createIn         = var.feedback_size != "" ? var.model_namespaces : []
      size             = var.feedback_size != "" ? var.feedback_size : "1Gi"
      storageClassName = var.artifacts_storage_class
    }
    mlflow = {
      trackingUri = local.mlflow_tracking_uri
    }
    gateway = {
      name      = var.gateway_name
      namespace = var.gateway_namespace
    }
    prometheus = {
      url = local.prometheus_url
    }
    # Where the operator's NetworkPolicies let Prometheus and the KubeRay operator in.
    security = {
      monitoringNamespace = var.monitoring_namespace
      kuberayNamespace    = var.kuberay_namespace
    }
  }
}

resource "kubernetes_namespace_v1" "models" {
  for_each = toset(var.model_namespaces)

  metadata {
    name = each.value
    labels = {
      "app.kubernetes.io/part-of" = "recops"
    }
  }
}

# The operator, its CRDs and RBAC, the alerts and the Grafana dashboards.
resource "helm_release" "recops" {
  name             = "recops"
  chart            = local.recops_chart
  namespace        = var.recops_namespace
  create_namespace = true
  wait             = true

  values = [
    yamlencode(local.recops_module_values),
    yamlencode(var.recops_values),
  ]

  # ServiceMonitor and PrometheusRule need the Prometheus operator's CRDs; RayJobs need KubeRay.
  depends_on = [
    helm_release.kube_prometheus_stack,
    helm_release.kuberay_operator,
    helm_release.gateway,
    helm_release.mlflow,
    kubernetes_namespace_v1.models,
  ]
}
