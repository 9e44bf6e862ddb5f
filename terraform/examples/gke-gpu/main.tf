# A GKE cluster with a general node pool and an autoscaled GPU pool, and everything recops
# expects on it (KubeRay, Prometheus and Grafana, Gateway API with Envoy Gateway, MLflow with
# PostgreSQL, the recops chart). Usage: see terraform/README.md.

provider "google" {
  project = var.project_id
  region  = var.region
}

resource "google_container_cluster" "recops" {
  name           = var.cluster_name
  location       = var.region
  node_locations = var.node_zones
  network        = var.network

  # Node pools are managed below; the default pool is removed once the cluster exists.
  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = false

  resource_labels = { app = "recops" }

  # Upgrades come from GKE's tested channel; nodes follow with auto_upgrade below.
  release_channel {
    channel = "REGULAR"
  }

  # Only Google identities: no long-lived client certificate is issued.
  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  # Pod-to-pod traffic on a node shows up in VPC flow logs.
  enable_intranode_visibility = true

  # No gateway_api_config: Envoy Gateway's chart brings the Gateway API CRDs (see the module).

  # Nodes have no public address; the control plane's public endpoint answers only the
  # networks in master_authorized_networks (kubectl and terraform run from there).
  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = var.master_ipv4_cidr_block
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.master_authorized_networks
      content {
        cidr_block   = cidr_blocks.value.cidr_block
        display_name = cidr_blocks.value.display_name
      }
    }
  }

  # VPC-native: private clusters need alias IP ranges (GKE allocates them).
  ip_allocation_policy {}

  # Enforce the NetworkPolicies the recops chart and operator create (Calico).
  network_policy {
    enabled  = true
    provider = "CALICO"
  }

  # Filestore CSI gives the ReadWriteMany volume that engines are shared through.
  addons_config {
    gcp_filestore_csi_driver_config {
      enabled = true
    }
    network_policy_config {
      disabled = false
    }
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }
}

# Private nodes reach image registries (ghcr.io), Hugging Face or GroupLens through NAT only.
resource "google_compute_router" "nat" {
  name    = "${var.cluster_name}-nat"
  region  = var.region
  network = var.network
}

resource "google_compute_router_nat" "nat" {
  name                               = "${var.cluster_name}-nat"
  router                             = google_compute_router.nat.name
  region                             = var.region
  nat_ip_allocate_option             = "AUTO_ONLY"
  source_subnetwork_ip_ranges_to_nat = "ALL_SUBNETWORKS_ALL_IP_RANGES"
}

resource "google_container_node_pool" "general" {
  name       = "general"
  cluster    = google_container_cluster.recops.id
  node_count = var.cpu_node_count

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type = var.cpu_machine_type
    oauth_scopes = ["https://www.googleapis.com/auth/cloud-platform"]
    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

# Training workers and gpu-* serving targets land here through the chart's GPU node selector
# and toleration; the pool scales to zero when no GPU pod is waiting.
resource "google_container_node_pool" "gpu" {
  name    = "gpu"
  cluster = google_container_cluster.recops.id

  autoscaling {
    min_node_count = 0
    max_node_count = var.gpu_max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type = var.gpu_machine_type
    oauth_scopes = ["https://www.googleapis.com/auth/cloud-platform"]

    guest_accelerator {
      type  = var.gpu_type
      count = var.gpu_count
      gpu_driver_installation_config {
        gpu_driver_version = "LATEST"
      }
    }

    labels = {
      "nvidia.com/gpu.present" = "true"
    }

    taint {
      key    = "nvidia.com/gpu"
      value  = "present"
      effect = "NO_SCHEDULE"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }
}

data "google_client_config" "current" {}

locals {
  cluster_endpoint = "https://${google_container_cluster.recops.endpoint}"
  cluster_ca       = base64decode(google_container_cluster.recops.master_auth[0].cluster_ca_certificate)
}

provider "kubernetes" {
  host                   = local.cluster_endpoint
  token                  = data.google_client_config.current.access_token
  cluster_ca_certificate = local.cluster_ca
}

provider "helm" {
  kubernetes = {
    host                   = local.cluster_endpoint
    token                  = data.google_client_config.current.access_token
    cluster_ca_certificate = local.cluster_ca
  }
}

resource "google_storage_bucket" "mlflow_artifacts" {
  name                        = "${var.project_id}-${var.cluster_name}-mlflow"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # A deleted or overwritten artifact can be restored from its noncurrent version.
  versioning {
    enabled = true
  }
  force_destroy = false
}

module "recops_platform" {
  source = "../../modules/recops-platform"

  recops_image_tag        = var.recops_image_tag
  model_namespaces        = ["recommenders"]
  operator_replicas       = 2
  artifacts_storage_class = "standard-rwx"
  mlflow_artifacts_bucket = google_storage_bucket.mlflow_artifacts.name

  gpu_node_selector = { "nvidia.com/gpu.present" = "true" }
  gpu_tolerations   = [{ key = "nvidia.com/gpu", operator = "Equal", value = "present", effect = "NoSchedule" }]

  depends_on = [google_container_node_pool.general, google_container_node_pool.gpu]
}
