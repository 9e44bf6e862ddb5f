"""Every conversation the operator has with the world, one client per peer.

- ``kubernetes``: the API server (the resources it addresses are in ``resources.py``);
- ``mlflow``: MLflow's REST API: training results, the ``champion`` alias;
- ``prometheus``: instant queries, for rollout analysis and retraining signals;
- ``runtime_admin``: a runtime's admin API, for the one-machine ``recops rollout``;
- ``scrape``: a runtime's own ``/metrics`` text, for ``recops rollout`` without Prometheus.

The operator builds each once at start-up (``controllers/context.py``) and hands it to the
handlers through the operator context; nothing here keeps module-level state.
"""
