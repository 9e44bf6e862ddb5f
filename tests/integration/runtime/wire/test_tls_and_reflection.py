"""Issue 27, finding 11: TLS on gRPC, HTTP and the admin API from mounted certificate
files (client certificates optional), and server reflection that can be turned off."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc


def self_signed(folder: Path, name: str) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made here (cryptography, else openssl)."""
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither cryptography nor openssl is available")
        subprocess.run(
            [
                *(
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:P-256",
                ),
                *("-nodes", "-days", "1", "-subj", f"/CN={name}", "-keyout", str(key)),
                *("-out", str(cert), "-addext", "subjectAltName=IP:127.0.0.1"),
            ],
            check=True,
            capture_output=True,
        )
        return cert, key
    private = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert, key


async def _health(channel: grpc.aio.Channel) -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    return int(reply.status)


async def test_tls_server_answers_tls_clients_only(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path, "server")
    server = await start_server(tls_cert_file=cert, tls_key_file=key)
    assert server.ports is not None
    target = f"127.0.0.1:{server.ports.grpc}"
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    async with grpc.aio.secure_channel(target, credentials) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
    async with grpc.aio.insecure_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await _health(channel)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    trusted = ssl.create_default_context(cafile=str(cert))
    async with httpx.AsyncClient(verify=trusted) as http:
        for port, path in (
            (server.ports.http, "/readyz"),
            (server.ports.admin, "/admin/v1/traffic"),
        ):
            assert (await http.get(f"https://127.0.0.1:{port}{path}")).status_code == 200
    async with httpx.AsyncClient() as http:
        for port in (server.ports.http, server.ports.admin):
            with pytest.raises(httpx.HTTPError):
                await http.get(f"http://127.0.0.1:{port}/readyz")


async def test_client_certificates_when_a_client_ca_is_given(
    start_server: Callable[..., Any], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path, "server")
    client_cert, client_key = self_signed(tmp_path, "client")  # its own CA
    server = await start_server(
        tls_cert_file=cert, tls_key_file=key, tls_client_ca_file=client_cert
    )
    assert server.ports is not None
    target = f"127.0.0.1:{server.ports.grpc}"
    with_cert = grpc.ssl_channel_credentials(
        cert.read_bytes(), client_key.read_bytes(), client_cert.read_bytes()
    )
    async with grpc.aio.secure_channel(target, with_cert) as channel:
        assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
    without = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    async with grpc.aio.secure_channel(target, without) as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await _health(channel)
    trusted = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{server.ports.http}/readyz"
    async with httpx.AsyncClient(verify=trusted) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get(url)
    trusted.load_cert_chain(client_cert, client_key)
    async with httpx.AsyncClient(verify=trusted) as http:
        assert (await http.get(url)).status_code == 200


def test_tls_settings_come_in_pairs(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from recops_runtime.serve_settings import ServeSettings

    with pytest.raises(ValidationError, match="give both"):
        ServeSettings(engines={"v1": tmp_path}, tls_cert_file=tmp_path / "c")
    with pytest.raises(ValidationError, match="tls_client_ca_file"):
        ServeSettings(engines={"v1": tmp_path}, tls_client_ca_file=tmp_path / "ca")


async def _list_services(channel: grpc.aio.Channel) -> Any:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for reply in stub.ServerReflectionInfo(iter([request]), timeout=5):
        return reply
    return None


@pytest.mark.parametrize("reflection", [True, False])
async def test_reflection_can_be_turned_off(
    start_server: Callable[..., Any], reflection: bool
) -> None:
    server = await start_server(reflection=reflection)
    assert server.ports is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.ports.grpc}") as channel:
        if reflection:
            reply = await _list_services(channel)
            names = {s.name for s in reply.list_services_response.service}
            assert "recops.v1.Recommender" in names
        else:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _list_services(channel)
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
            # The service itself still answers.
            assert await _health(channel) == health_pb2.HealthCheckResponse.SERVING
