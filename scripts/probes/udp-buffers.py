# Socket buffers against the memory limit, run inside a sandbox (EscapeTests.udpBuffersAreHeldToTheMemoryLimit
# on the CI host, scripts/vm-checks.sh on cgroup v2): 400 bound UDP sockets never read, each sent datagrams up
# to its receive buffer. Prints what they hold in all, in MB, from the namespace's own /proc/net/udp (rx_queue:
# the bytes charged to each socket) — about 170 MB whatever the limit when socket buffers are not charged.
import socket

receivers = []
for i in range(400):
    r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
    r.bind(("127.0.0.1", 0))
    receivers.append(r)
sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sender.setblocking(False)
chunk = b"x" * 60000
for r in receivers:
    for j in range(8):
        try:
            sender.sendto(chunk, r.getsockname())
        except OSError:
            break
held = sum(int(line.split()[4].split(":")[1], 16) for line in open("/proc/net/udp").readlines()[1:])
print("INFO udp_held_mb %d" % (held >> 20))
print("DONE")
