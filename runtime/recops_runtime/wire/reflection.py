"""Server reflection under both names clients ask for: ``grpc.reflection.v1`` (which
newer tools, grpcurl and grpc-js among them, try first) and ``grpc.reflection.v1alpha``.

grpcio-reflection ships only v1alpha's messages. v1's are the same messages, field for
field, under a new package, so one servicer answers both. So that a client describing
every listed service can resolve v1 too, v1's file is v1alpha's renamed, and the files
reflection answers from live in a descriptor pool of the server's own: the process-wide
default pool is left alone, where another v1 file could be registered later.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool  # type: ignore[import-untyped]
from google.protobuf.descriptor import FileDescriptor  # type: ignore[import-untyped]
from grpc_reflection.v1alpha import reflection, reflection_pb2

V1ALPHA = "grpc.reflection.v1alpha"
V1 = "grpc.reflection.v1"
SERVICE = "ServerReflection"
METHOD = "ServerReflectionInfo"


def _renamed(type_name: str) -> str:
    return type_name.replace(f".{V1ALPHA}.", f".{V1}.", 1)


def _rename_message(message: descriptor_pb2.DescriptorProto) -> None:
    for field in message.field:
        if field.type_name:
            field.type_name = _renamed(field.type_name)
    for nested in message.nested_type:
        _rename_message(nested)


def v1_file() -> descriptor_pb2.FileDescriptorProto:
    """``grpc/reflection/v1/reflection.proto``, made from v1alpha's file."""
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = "grpc/reflection/v1/reflection.proto"
    proto.package = V1
    proto.ClearField("options")  # v1alpha's language package options
    for message in proto.message_type:
        _rename_message(message)
    for service in proto.service:
        for method in service.method:
            method.input_type = _renamed(method.input_type)
            method.output_type = _renamed(method.output_type)
    return proto


def reflection_pool(files: Iterable[FileDescriptor]) -> descriptor_pool.DescriptorPool:
    """A pool holding ``files``, their imports, and both reflection files."""
    pool = descriptor_pool.DescriptorPool()
    added: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name in added:
            return
        for dependency in file.dependencies:
            add(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file.CopyToProto(proto)
        pool.AddSerializedFile(proto.SerializeToString())
        added.add(file.name)

    for file in (*files, reflection_pb2.DESCRIPTOR):
        add(file)
    pool.AddSerializedFile(v1_file().SerializeToString())
    return pool


def enable_reflection(server: grpc.aio.Server, files: Iterable[FileDescriptor]) -> None:
    """Serves reflection (v1 and v1alpha) of every service ``files`` define."""
    files = tuple(files)
    names = [service.full_name for f in files for service in f.services_by_name.values()]
    names += [f"{V1}.{SERVICE}", f"{V1ALPHA}.{SERVICE}"]
    pool = reflection_pool(files)
    reflection.enable_server_reflection(names, server, pool=pool)
    servicer = reflection.aio.ReflectionServicer(names, pool=pool)
    handlers = {
        METHOD: grpc.stream_stream_rpc_method_handler(
            servicer.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(f"{V1}.{SERVICE}", handlers),)
    )
    server.add_registered_method_handlers(f"{V1}.{SERVICE}", handlers)
