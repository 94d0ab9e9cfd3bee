#!/usr/bin/env python3
"""A consumer of the collector's alert feed, `firstline.v1.Feed/Watch`, written with another
gRPC stack (Python grpcio) than the collector's own (tonic).

It is both a readable example for people who write their own consumer and the client that
`tests/e2e/feeds_watch.rs` drives: the feed's contract is only proven when a program that
shares no code with the collector can read it. Nothing here is Firstline-specific beyond the
.proto file: the stubs are generated at run time from the repository's `proto/` with
grpcio-tools, so this script always speaks the contract as it is in the tree.

Needs python3 with grpcio and grpcio-tools (`scripts/test.sh` installs them).

    python3 tests/python/watch_consumer.py --target 127.0.0.1:50051 \
        --data-dir /var/lib/firstline --cursor 0 --count 10

Authentication is mutual TLS with the operator certificate the collector writes into its data
directory (`operator.crt`, `operator.key`), trusting only the collector's CA (`ca.crt`). The
collector's server certificate names `localhost` and the loopback addresses (and the names in
its configuration), so the TLS name checked is `--server-name` (default `localhost`) whatever
address `--target` dials.

Output, on stdout, one JSON object a line, flushed at once:
  - one line per event:
      {"cursor": 7, "kind": "comment", "ticket_id": 1, "rule": "disk.usage",
       "priority": 2, "hostname": "pc-1", "detail": "..."}
  - on a gRPC error, one last line, then exit status 1:
      {"error": {"code": "RESOURCE_EXHAUSTED", "details": "...",
                 "resume_cursor": "42", "trailing_metadata": {...}}}
    `resume_cursor` is the `firstline-resume-cursor` trailer (null when absent): the cursor to
    reconnect with.
On stderr, JSON lines about the stream itself: {"stream": "open"} once the collector has
answered the call with its headers (it has accepted the request), and {"end": ...} with the
reason and the last cursor received when the consumer stops on its own.

It stops after `--count` events (exit 0), after `--idle-timeout` seconds without an event
(exit 0), on a gRPC error (exit 1), or if the collector ends the stream without an error
(exit 3: a feed never ends on its own). To resume, run it again with `--cursor` set to the
last cursor it printed: it receives exactly the events it missed.
"""

import argparse
import base64
import importlib
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading

import grpc

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO = "firstline/v1/firstline.proto"
RESUME_TRAILER = "firstline-resume-cursor"


def parse_args():
    p = argparse.ArgumentParser(description="Watch the Firstline alert feed over gRPC (mTLS).")
    p.add_argument("--target", required=True, help="collector gRPC address, host:port")
    p.add_argument("--data-dir", help="collector data directory holding ca.crt, operator.crt and operator.key")
    p.add_argument("--ca", help="CA certificate (default: DATA_DIR/ca.crt)")
    p.add_argument("--cert", help="operator certificate (default: DATA_DIR/operator.crt)")
    p.add_argument("--key", help="operator private key (default: DATA_DIR/operator.key)")
    p.add_argument("--server-name", default="localhost", help="name the server certificate is checked against")
    p.add_argument("--proto-dir", default=os.path.join(REPO, "proto"), help="directory holding " + PROTO)
    p.add_argument("--cursor", type=int, default=0, help="events after this cursor (0: every event kept)")
    p.add_argument("--from-now", action="store_true", help="only events committed from now on")
    p.add_argument("--max-priority", type=int, default=0, help="only tickets of this priority or more urgent (1-4)")
    p.add_argument("--rule", default="", help="only tickets of this rule")
    p.add_argument("--host", default="", help="only tickets of this host (agent id or host name)")
    p.add_argument("--label", default="", help="only tickets of hosts with this label")
    p.add_argument("--count", type=int, default=0, help="stop after this many events (0: no limit)")
    p.add_argument("--idle-timeout", type=float, default=0, help="stop after this many seconds without an event (0: never)")
    args = p.parse_args()
    for name, default in (("ca", "ca.crt"), ("cert", "operator.crt"), ("key", "operator.key")):
        if getattr(args, name) is None:
            if args.data_dir is None:
                p.error(f"--{name} or --data-dir is required")
            setattr(args, name, os.path.join(args.data_dir, default))
    return args


def load_stubs(proto_dir, out_dir):
    """Generates the Python messages and stubs from the .proto into out_dir and imports them."""
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", proto_dir,
         f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", PROTO],
        check=True,
    )
    sys.path.insert(0, out_dir)
    pb2 = importlib.import_module("firstline.v1.firstline_pb2")
    pb2_grpc = importlib.import_module("firstline.v1.firstline_pb2_grpc")
    return pb2, pb2_grpc


def emit(stream, obj):
    stream.write(json.dumps(obj) + "\n")
    stream.flush()


def event_line(ev):
    t = ev.ticket
    return {
        "cursor": ev.cursor,
        "kind": ev.kind,
        "ticket_id": t.id,
        "rule": t.rule_id,
        "priority": t.priority,
        "hostname": t.hostname,
        "detail": ev.detail,
    }


def error_line(err):
    trailers = {}
    for key, value in err.trailing_metadata() or ():
        # Binary trailers (`-bin` keys) arrive as bytes.
        trailers[key] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return {
        "error": {
            "code": err.code().name,
            "details": err.details(),
            "resume_cursor": trailers.get(RESUME_TRAILER),
            "trailing_metadata": trailers,
        }
    }


def read_stream(call, out):
    """Runs in a thread: puts what the stream delivers on `out`, so the main thread can wait
    for the next event with a timeout."""
    try:
        call.initial_metadata()
        # A call refused at once ends without headers of its own: no "open" for it.
        if not (call.done() and call.code() != grpc.StatusCode.OK):
            out.put(("open", None))
        for ev in call:
            out.put(("event", ev))
        out.put(("closed", None))
    except grpc.RpcError as err:
        out.put(("error", err))


def main():
    args = parse_args()
    with open(args.ca, "rb") as f:
        ca = f.read()
    with open(args.cert, "rb") as f:
        cert = f.read()
    with open(args.key, "rb") as f:
        key = f.read()

    with tempfile.TemporaryDirectory(prefix="firstline-stubs-") as stubs:
        pb2, pb2_grpc = load_stubs(args.proto_dir, stubs)
        creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
        options = [("grpc.ssl_target_name_override", args.server_name)]
        with grpc.secure_channel(args.target, creds, options=options) as channel:
            request = pb2.WatchRequest(
                cursor=args.cursor,
                from_now=args.from_now,
                max_priority=args.max_priority,
                rule=args.rule,
                host=args.host,
                label=args.label,
            )
            call = pb2_grpc.FeedStub(channel).Watch(request)
            return consume(call, args)


def consume(call, args):
    inbox = queue.Queue()
    threading.Thread(target=read_stream, args=(call, inbox), daemon=True).start()
    received, last = 0, None
    timeout = args.idle_timeout if args.idle_timeout > 0 else None
    while True:
        try:
            what, value = inbox.get(timeout=timeout)
        except queue.Empty:
            call.cancel()
            emit(sys.stderr, {"end": "idle", "events": received, "last_cursor": last})
            return 0
        if what == "open":
            emit(sys.stderr, {"stream": "open"})
        elif what == "event":
            emit(sys.stdout, event_line(value))
            received, last = received + 1, value.cursor
            if args.count and received >= args.count:
                call.cancel()
                emit(sys.stderr, {"end": "count", "events": received, "last_cursor": last})
                return 0
        elif what == "error":
            emit(sys.stdout, error_line(value))
            return 1
        else:
            emit(sys.stderr, {"end": "closed by the collector", "events": received, "last_cursor": last})
            return 3


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
