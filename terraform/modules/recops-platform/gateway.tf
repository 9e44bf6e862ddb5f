# Envoy Gateway: a Gateway API implementation whose chart also installs the Gateway API CRDs.
resource "helm_release" "envoy_gateway" {
  name             = "envoy-gateway"
  repository       = "oci://docker.io/envoyproxy"
  chart            = "gateway-helm"
  version          = var.envoy_gateway_chart_version
  namespace        = var.gateway_namespace
  create_namespace = true
  wait             = true
}

# The GatewayClass and the Gateway that the operator's GRPCRoutes attach to. A small local chart
# rather than kubernetes_manifest: the Gateway API CRDs do not exist yet when the plan is made.
resource "helm_release" "gateway" {
  name      = "recops-gateway"
  chart     = "${path.module}/charts/recops-gateway"
  namespace = var.gateway_namespace

  values = [yamlencode({
    name = var.gateway_name
    port = var.gateway_port
    # Routes from the models' namespaces may attach.
    allowedNamespaces = var.model_namespaces
  })]

  depends_on = [helm_release.envoy_gateway]
}
