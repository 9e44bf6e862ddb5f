# MLflow tracking server with a PostgreSQL backend: the trainer logs runs and registers models,
# the operator reads them through MLflow's REST API.

resource "random_password" "mlflow_db" {
  length  = 24
  special = false
}

locals {
  in_cluster_db = var.mlflow_database == null
  mlflow_db = local.in_cluster_db ? {
    host     = "mlflow-postgresql.${var.mlflow_namespace}.svc.cluster.local"
    port     = 5432
    database = "mlflow"
    user     = "mlflow"
    password = random_password.mlflow_db.result
  } : var.mlflow_database
  mlflow_tracking_uri = "http://mlflow.${var.mlflow_namespace}.svc.cluster.local:5000"
}

resource "helm_release" "mlflow_postgresql" {
  count            = local.in_cluster_db ? 1 : 0
  name             = "mlflow-postgresql"
  repository       = "oci://registry-1.docker.io/bitnamicharts"
  chart            = "postgresql"
  version          = var.postgresql_chart_version
  namespace        = var.mlflow_namespace
  create_namespace = true
  wait             = true

  values = [yamlencode({
    fullnameOverride = "mlflow-postgresql"
    auth = {
      username = "mlflow"
      database = "mlflow"
    }
  })]

  set_sensitive = [
    { name = "auth.password", value = random_password.mlflow_db.result },
    { name = "auth.postgresPassword", value = random_password.mlflow_db.result },
  ]
}

resource "helm_release" "mlflow" {
  name             = "mlflow"
  repository       = "https://community-charts.github.io/helm-charts"
  chart            = "mlflow"
  version          = var.mlflow_chart_version
  namespace        = var.mlflow_namespace
  create_namespace = true
  wait             = true

  values = [yamlencode({
    fullnameOverride = "mlflow"
    serviceAccount = {
      create      = true
      annotations = var.mlflow_service_account_annotations
    }
    backendStore = {
      databaseMigration = true
      postgres = {
        enabled  = true
        host     = local.mlflow_db.host
        port     = local.mlflow_db.port
        database = local.mlflow_db.database
        user     = local.mlflow_db.user
      }
    }
    artifactRoot = {
      gcs = {
        enabled = var.mlflow_artifacts_bucket != ""
        bucket  = var.mlflow_artifacts_bucket
        path    = "mlflow"
      }
    }
    # Clients (trainer pods, the operator) reach artifacts through the server.
    extraFlags = ["serveArtifacts"]
    serviceMonitor = {
      enabled   = true
      namespace = var.mlflow_namespace
      labels    = {}
    }
  })]

  set_sensitive = [{
    name  = "backendStore.postgres.password"
    value = local.mlflow_db.password
  }]

  depends_on = [helm_release.mlflow_postgresql, helm_release.kube_prometheus_stack]
}
