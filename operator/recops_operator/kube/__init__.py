"""The Kubernetes resources the operator addresses, as data (the client is in ``clients/``)."""
