"""An ML Metadata gRPC server made of the `ml-metadata` wheel's own C++ store (reconnaissance, not used by mlkeel).

The MLMD release ships its gRPC server (`metadata_store_server`, C++, Bazel) only as a container image, which
cannot be had or built here. The PyPI wheel `ml-metadata` (1.17.1 for CPython 3.11, manylinux) holds the same
C++ MetadataStore as a pybind11 extension (`metadata_store_serialized`: every RPC of `MetadataStoreService` as a
function taking and returning serialized protos) plus the service's gRPC definitions. This program serves the
service by passing each request's bytes to that function and its answer's bytes back, unparsed: the store is
the upstream C++ code; only the network front is new. Backed by SQLite (a file) or MySQL/MariaDB.

    python mlmd_grpc_shim.py --port 8080 --sqlite /tmp/mlmd.sqlite
    python mlmd_grpc_shim.py --port 8080 --mysql-host 127.0.0.1 --mysql-port 3307 --mysql-db metadb

Needs `pip install ml-metadata==1.17.1` (it brings grpcio and protobuf 4.x: a venv of its own, since kfp 2.17
wants protobuf 6). KFP's driver and launcher find it through METADATA_GRPC_SERVICE_HOST/_PORT.
"""

from __future__ import annotations

import argparse
import logging
import time
from concurrent import futures

import grpc
from ml_metadata.metadata_store.pywrap.metadata_store_extension import metadata_store as metadata_store_serialized
from ml_metadata.proto import metadata_store_pb2, metadata_store_service_pb2

SERVICE = "ml_metadata.MetadataStoreService"


def connection_config(args: argparse.Namespace) -> metadata_store_pb2.ConnectionConfig:
    """The store's connection: MySQL/MariaDB when ``--mysql-host`` is given, else the SQLite file ``--sqlite``."""
    config = metadata_store_pb2.ConnectionConfig()
    if args.mysql_host:
        config.mysql.host = args.mysql_host
        config.mysql.port = args.mysql_port
        config.mysql.database = args.mysql_db
        config.mysql.user = args.mysql_user
        config.mysql.password = args.mysql_password
    else:
        config.sqlite.filename_uri = args.sqlite
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    return config


def make_handler(store: object, name: str) -> grpc.RpcMethodHandler:
    """A gRPC handler of one MLMD method: serialized request in, the extension's serialized answer out."""
    function = getattr(metadata_store_serialized, name)

    def call(request: bytes, context: grpc.ServicerContext) -> bytes:
        response, message, code = function(store, request)
        if code != 0:  # absl status codes are gRPC's codes
            status = next((s for s in grpc.StatusCode if s.value[0] == code), grpc.StatusCode.UNKNOWN)
            context.abort(status, message.decode("utf-8", "replace"))
        return response

    # No (de)serializers: the request and the answer stay bytes end to end.
    return grpc.unary_unary_rpc_method_handler(call)


def main() -> None:
    """Serve every method the extension has on ``--host:--port`` until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--sqlite", default="/tmp/mlmd.sqlite")
    parser.add_argument("--mysql-host", default="")
    parser.add_argument("--mysql-port", type=int, default=3306)
    parser.add_argument("--mysql-db", default="metadb")
    parser.add_argument("--mysql-user", default="root")
    parser.add_argument("--mysql-password", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    config = connection_config(args)
    migration = metadata_store_pb2.MigrationOptions(enable_upgrade_migration=True)
    store = metadata_store_serialized.CreateMetadataStore(config.SerializeToString(), migration.SerializeToString())
    methods = metadata_store_service_pb2.DESCRIPTOR.services_by_name["MetadataStoreService"].methods
    handlers, missing = {}, []
    for method in methods:
        if hasattr(metadata_store_serialized, method.name):
            handlers[method.name] = make_handler(store, method.name)
        else:
            missing.append(method.name)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    server.add_insecure_port(f"{args.host}:{args.port}")
    server.start()
    logging.info(
        "MLMD gRPC on %s:%d: %d methods served, not in the extension: %s",
        args.host,
        args.port,
        len(handlers),
        ", ".join(missing) or "none",
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop(2)


if __name__ == "__main__":
    main()
