resource "random_password" "grafana_admin" {
  length  = 24
  special = false
}

locals {
  grafana_admin_password = coalesce(var.grafana_admin_password, random_password.grafana_admin.result)
  prometheus_url         = "http://kube-prometheus-stack-prometheus.${var.monitoring_namespace}.svc.cluster.local:9090"
}

# Prometheus (analysis of rollouts, alerts) and Grafana (dashboards shipped by the recops chart).
resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = var.kube_prometheus_stack_chart_version
  namespace        = var.monitoring_namespace
  create_namespace = true
  wait             = true
  timeout          = 900

  values = [yamlencode({
    prometheus = {
      prometheusSpec = {
        # Select every ServiceMonitor and PrometheusRule, not only this release's: the
        # recops chart's (and MLflow's) carry no kube-prometheus-stack release label.
        serviceMonitorSelectorNilUsesHelmValues = false
        podMonitorSelectorNilUsesHelmValues     = false
        ruleSelectorNilUsesHelmValues           = false
        retention                               = "15d"
      }
    }
    # Status of RecModels, TrainingRuns and Rollouts as metrics (phases, weights, analysis
    # values, durations, offline metrics): the recops rollouts and training dashboards and
    # the rollout and training alerts read them.
    kube-state-metrics = {
      customResourceState = {
        enabled = true
        config  = yamldecode(file("${path.module}/../../../charts/recops/files/kube-state-metrics.yaml"))
      }
      rbac = {
        extraRules = [
          {
            apiGroups = ["recops.io"]
            resources = ["recmodels", "trainingruns", "rollouts"]
            verbs     = ["list", "watch"]
          },
          {
            apiGroups = ["apiextensions.k8s.io"]
            resources = ["customresourcedefinitions"]
            verbs     = ["list", "watch"]
          },
        ]
      }
    }
    grafana = {
      sidecar = {
        dashboards = {
          enabled          = true
          label            = "grafana_dashboard"
          labelValue       = "1"
          searchNamespace  = "ALL"
          folderAnnotation = "grafana_folder"
          provider = {
            foldersFromFilesStructure = true
          }
        }
      }
    }
  })]

  set_sensitive = [{
    name  = "grafana.adminPassword"
    value = local.grafana_admin_password
  }]
}
