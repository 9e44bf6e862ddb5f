variable "project_id" {
  type        = string
  description = "Google Cloud project that holds the cluster."
}

variable "region" {
  type        = string
  description = "Region of the cluster; its node pools spread over the zones listed in node_zones."
  default     = "europe-west4"
}

variable "node_zones" {
  type        = list(string)
  description = "Zones of the node pools; pick zones that offer gpu_type."
  default     = ["europe-west4-a"]
}

variable "cluster_name" {
  type        = string
  description = "Name of the GKE cluster."
  default     = "recops"
}

variable "cpu_machine_type" {
  type        = string
  description = "Machine type of the general pool (operator, CPU serving, add-ons)."
  default     = "e2-standard-8"
}

variable "cpu_node_count" {
  type        = number
  description = "Nodes per zone in the general pool."
  default     = 2
}

variable "gpu_machine_type" {
  type        = string
  description = "Machine type of the GPU pool (training workers, gpu-* serving targets)."
  default     = "g2-standard-8"
}

variable "gpu_type" {
  type        = string
  description = "GPU accelerator type of the GPU pool."
  default     = "nvidia-l4"
}

variable "gpu_count" {
  type        = number
  description = "GPUs per node of the GPU pool."
  default     = 1
}

variable "gpu_max_nodes" {
  type        = number
  description = "Upper bound of the GPU pool's autoscaler, per zone (it scales to zero when idle)."
  default     = 4
}

variable "recops_image_tag" {
  type        = string
  description = "Tag of the recops images to run; empty uses the chart's appVersion."
  default     = ""
}

variable "master_authorized_networks" {
  type = list(object({
    cidr_block   = string
    display_name = string
  }))
  description = "Networks allowed to reach the cluster's control plane (where kubectl and terraform run); nodes are private."
}

variable "master_ipv4_cidr_block" {
  type        = string
  description = "The /28 range of the private cluster's control plane; must not overlap the VPC's ranges."
  default     = "172.16.0.32/28"
}

variable "network" {
  type        = string
  description = "VPC network of the cluster and of the NAT its private nodes reach the internet through."
  default     = "default"
}
