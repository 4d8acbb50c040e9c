"""What the Python tests share: paths, the generated gRPC stubs, and a
client that calls SendLog the way the Data Nadhi SDK does.

Paths come from the environment that "make check" sets (ECHOPOST,
ECHOPOST_SEND, ECHOPOST_PROTO), or default to the source tree.
"""

import os
import subprocess
import sys
import tempfile

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
SOCKET_NAME = "data-nadhi-agent.sock"

_stubs = None


def echopost_path():
    return os.environ.get("ECHOPOST") or os.path.join(REPO, "src", "echopost")


def proto_path():
    return (os.environ.get("ECHOPOST_PROTO")
            or os.path.join(REPO, "proto", "logagent.proto"))


def load_stubs():
    """Generate logagent_pb2 and logagent_pb2_grpc with protoc and Debian's
    grpc_python_plugin, once, and return the two modules."""
    global _stubs
    if _stubs is None:
        out = tempfile.mkdtemp(prefix="ep-stubs-", dir="/tmp")
        proto = os.path.abspath(proto_path())
        subprocess.run(
            ["protoc", "-I" + os.path.dirname(proto), "--python_out=" + out,
             "--grpc_python_out=" + out,
             "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
             proto], check=True, timeout=60)
        sys.path.insert(0, out)
        import logagent_pb2
        import logagent_pb2_grpc
        _stubs = (logagent_pb2, logagent_pb2_grpc)
    return _stubs


def send_log(socket_path, json_data, pipelines, api_key, timeout=5):
    """One SendLog on a new channel, as the SDK does. Returns (success,
    message); an RPC error is (False, its text)."""
    pb, pb_grpc = load_stubs()
    try:
        with grpc.insecure_channel("unix://" + socket_path) as channel:
            stub = pb_grpc.LogAgentStub(channel)
            answer = stub.SendLog(pb.LogRequest(json_data=json_data,
                                                pipelines=pipelines,
                                                api_key=api_key),
                                  timeout=timeout)
            return answer.success, answer.message
    except grpc.RpcError as error:
        return False, str(error.code())
