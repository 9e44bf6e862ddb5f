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
