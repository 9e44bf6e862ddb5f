"""TLS for the service's listeners from mounted PEM files (``--tls-cert-file``,
``--tls-key-file``, optionally ``--tls-client-ca-file`` to require client certificates).

The files are read once at start-up; a renewed certificate (cert-manager rewrites the
Secret) takes effect on the pod's next restart.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import grpc

from recops_runtime.api.errors import ServiceError, Status
from recops_runtime.serve_settings import ServeSettings


def _read(path: Path, flag: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ServiceError(
            Status.FAILED_PRECONDITION, f"{flag}: cannot read {path}: {exc}"
        ) from exc


def http_ssl_context(settings: ServeSettings) -> ssl.SSLContext | None:
    """The HTTP and admin listeners' TLS context; None without a certificate."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
        if settings.tls_client_ca_file is not None:
            context.load_verify_locations(settings.tls_client_ca_file)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise ServiceError(
            Status.FAILED_PRECONDITION, f"tls-cert-file/tls-key-file: not usable: {exc}"
        ) from exc
    return context


def grpc_credentials(settings: ServeSettings) -> grpc.ServerCredentials | None:
    """The gRPC port's TLS credentials; None without a certificate."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    key = _read(settings.tls_key_file, "tls-key-file")
    chain = _read(settings.tls_cert_file, "tls-cert-file")
    ca = None
    if settings.tls_client_ca_file is not None:
        ca = _read(settings.tls_client_ca_file, "tls-client-ca-file")
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=ca, require_client_auth=ca is not None
    )
