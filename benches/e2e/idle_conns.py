#!/usr/bin/env python3
"""RSS of a proxy holding N idle keep-alive client connections (benches/e2e/run.sh).

    idle_conns.py PID HOST PORT BODY_FILE [N]

Reads the proxy's VmRSS, opens N connections to HOST:PORT, sends one
absolute-form POST of BODY_FILE on each (one after the other, each answer read
in full), keeps every connection open, then reads VmRSS again and checks that
no connection was closed. Prints `key=value` lines; exits 1 on any failure.
"""
import socket
import sys
import time


def vm(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])  # kB
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def read_answer(sock):
    """Read one HTTP/1.1 answer (Content-Length or chunked); return the status."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed before the answer's head")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip().lower()
    if b"content-length" in headers:
        need = int(headers[b"content-length"])
        while len(rest) < need:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed inside the answer's body")
            rest += chunk
    elif headers.get(b"transfer-encoding") == b"chunked":
        while not rest.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError("connection closed inside a chunked body")
            rest += chunk
    if headers.get(b"connection") == b"close":
        raise RuntimeError("the proxy asked to close the connection")
    return status


def main():
    pid, host, port, body_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 256
    with open(body_file, "rb") as f:
        body = f.read()
    request = (
        b"POST http://api.shipper.example/v1/shipments HTTP/1.1\r\n"
        b"Host: api.shipper.example\r\n"
        b"Content-Type: application/json\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    rss_before = vm(pid, "VmRSS")
    socks = []
    for i in range(n):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(request)
        status = read_answer(s)
        if not 200 <= status < 300:
            print(f"error=connection {i} answered {status}")
            return 1
        socks.append(s)
    time.sleep(0.5)  # let the proxy settle (buffers released after the answers)
    rss_after = vm(pid, "VmRSS")
    closed = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1, socket.MSG_PEEK) == b"":
                closed += 1
        except BlockingIOError:
            pass  # still open, nothing to read: what we want
    for s in socks:
        s.close()
    print(f"connections={n}")
    print(f"closed_by_proxy={closed}")
    print(f"rss_before_kb={rss_before}")
    print(f"rss_with_idle_kb={rss_after}")
    return 1 if closed else 0


if __name__ == "__main__":
    sys.exit(main())
