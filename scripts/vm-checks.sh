#!/bin/bash
# Runs inside the scripts/e2e-vm guest (pure cgroup v2, real systemd, toold as a Delegate=yes
# service started through toold.socket). Prints one "VMCHECK PASS: …" / "VMCHECK FAIL: …" line per
# check to the serial console, then "VMCHECK END", then powers the guest off.
# Exec checks follow the contract `toolc exec --json [--timeout D] [--memory SIZE] [--pids N] -- CMD…`
# printing the exec result (status, exit_code, signal, violations, memory_peak_bytes, …).
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8
T=$(mktemp -d)

passed=0
failed=0
say() { echo "VMCHECK $*"; }
pass() { say "PASS: $*"; passed=$((passed + 1)); }
fail() { say "FAIL: $*"; failed=$((failed + 1)); }
detail() { sed 's/^/VMCHECK   | /' | head -n "${1:-20}"; }

# jq FILE EXPR: evaluates a Python expression over the JSON document `d` of FILE, prints the result.
jq() {
    python3 -c '
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    sys.exit("not JSON: " + open(sys.argv[1], errors="replace").read()[:300].replace("\n", " "))
try:
    v = eval(sys.argv[2], {"d": d})
except Exception as e:
    sys.exit("%s: %r" % (sys.argv[2], e))
print(json.dumps(v) if not isinstance(v, str) else v)' "$1" "$2" 2>&1
}

# texec NAME EXPECT_EXPR toolc-exec-args…: runs `toolc exec --json ARGS`, passes when EXPECT_EXPR
# (Python over the result `d`) is true.
texec() {
    local name=$1 expect=$2; shift 2
    local out=$T/exec.json rc=0 ok t0 t1
    t0=$(date +%s%N)
    toolc exec --json --no-stdin "$@" >"$out" 2>"$T/exec.err" || rc=$?
    t1=$(date +%s%N)
    # One interpreter start per check (python starts slowly under emulation): verdict, then summary.
    ok=$(jq "$out" "[bool($expect), {k: d.get(k) for k in ('status', 'exit_code', 'signal', 'violations', 'memory_peak_bytes', 'duration_ms')}]")
    if [[ "$ok" == "[true, "* ]]; then
        ok=${ok#\[true, }
        pass "$name (${ok%\]}, toolc exit $rc, $(( (t1 - t0) / 1000000 )) ms)"
    else
        fail "$name (toolc exit $rc; wanted $expect)"
        { cat "$out"; cat "$T/exec.err"; } | detail 30
    fi
}

# The cgroup directories below toold.service's cgroup, relative to it.
sandbox_cgroups() {
    local cg
    cg=$(systemctl show -p ControlGroup --value toold.service)
    [[ -n "$cg" && -d "/sys/fs/cgroup$cg" ]] || { echo "(toold.service has no cgroup)"; return; }
    find "/sys/fs/cgroup$cg" -mindepth 1 -type d | sed "s|^/sys/fs/cgroup$cg/||" | sort
}

echo "VMCHECK BEGIN (kernel $(uname -r), $(nproc) cpus, cgroup: $(stat -fc %T /sys/fs/cgroup), guest up $(cut -d" " -f1 /proc/uptime) s)"

# --- status through socket activation -------------------------------------------------------------
if toolc status --json >"$T/status.json" 2>"$T/status.err"; then
    pass "toolc status --json (socket activation)"
    toolc status 2>&1 | detail 30
else
    fail "toolc status --json (socket activation)"
    cat "$T/status.json" "$T/status.err" | detail
fi
layout=$(jq "$T/status.json" 'd["cgroup"]["layout"]')
[[ "$layout" == v2 ]] && pass "status: cgroup.layout is v2" || fail "status: cgroup.layout is v2 (got $layout)"
ctrl=$(jq "$T/status.json" 'sorted(set(["memory", "pids", "cpu"]) - set(d["cgroup"]["controllers"]))')
[[ "$ctrl" == "[]" ]] && pass "status: memory, pids, cpu usable ($(jq "$T/status.json" 'd["cgroup"]["controllers"]'))" \
    || fail "status: memory, pids, cpu usable (missing $ctrl)"
cg=$(systemctl show -p ControlGroup --value toold.service)
if [[ -n "$cg" && $(systemctl show -p Delegate --value toold.service) == yes ]]; then
    pass "toold.service is delegated ($cg: $(cat "/sys/fs/cgroup$cg/cgroup.controllers" 2>/dev/null))"
else
    fail "toold.service is delegated (ControlGroup='$cg')"
fi

# --- exec ------------------------------------------------------------------------------------------
texec "exec /bin/true exits 0" 'd["status"] == "exited" and d["exit_code"] == 0' --timeout 30s -- /bin/true
texec "exec echo: output comes back" 'd["status"] == "exited" and d["stdout"] == "hello\n"' --timeout 30s -- echo hello
echo "VMCHECK   | cgroups under toold.service during the run: $(sandbox_cgroups | tr '\n' ' ')"
texec "memory limit 64M: a 256 MiB allocation is reported as oom" 'd["status"] == "oom"' \
    --timeout 60s --memory 64M -- python3 -c 's = b"x" * (256 << 20)'
texec "memory limit 32M counts socket buffers: 400 unread UDP sockets (170 MB uncounted) are held under 64 MB or OOM-killed" \
    'd["status"] == "oom" or (d["status"] == "exited" and int(d["stdout"].split()[2]) < 64)' \
    --timeout 60s --memory 32M -- python3 -c "$(cat "$(dirname "$0")/udp-buffers.py")"
texec "pids limit 16: forking 64 sleepers shows pids in violations" '"pids" in d["violations"]' \
    --timeout 60s --pids 16 -- sh -c 'for i in $(seq 64); do sleep 2 & done; wait'
texec "timeout 2s kills a double-forked SIGTERM-ignoring sleeper: status timeout" \
    'd["status"] == "timeout" and d["duration_ms"] < 20000' \
    --timeout 2s -- sh -c 'trap "" TERM; (trap "" TERM; setsid sh -c "trap \"\" TERM; sleep 1000" &); exec sleep 1000'
sleep 1
left=$(pgrep -a -x sleep | grep 1000 || true)
[[ -z "$left" ]] && pass "no sleeper left behind after the timeout" || { fail "no sleeper left behind after the timeout"; echo "$left" | detail; }

active=$(systemctl show -p ActiveState --value toold.service)
restarts=$(systemctl show -p NRestarts --value toold.service)
[[ "$active" == active && "$restarts" == 0 ]] && pass "toold.service still active, never restarted (OOMPolicy=continue)" \
    || fail "toold.service still active, never restarted (ActiveState=$active NRestarts=$restarts)"

# Executions' cgroups are gone; what remains are the prepared sandboxes (warm-<pid>-<n>, at most the
# pool's size, 4 by default) waiting for the next calls.
leftover=$(sandbox_cgroups | grep -E '(^|/)sandboxes/.' | grep -vE '(^|/)sandboxes/warm-[0-9]+-[0-9]+$' || true)
prepared=$(sandbox_cgroups | grep -cE '(^|/)sandboxes/warm-[0-9]+-[0-9]+$' || true)
[[ -z "$leftover" && "$prepared" -le 4 ]] \
    && pass "no execution cgroups left under toold.service, $prepared prepared sandboxes ($(sandbox_cgroups | tr '\n' ' '))" \
    || { fail "no execution cgroups left under toold.service (prepared: $prepared, at most 4)"; echo "$leftover" | detail; }

# --- policy and records under systemd ----------------------------------------------------------------
src=$(jq "$T/status.json" 'd["policy"]["source"]')
[[ "$src" == /etc/toold/policy.json ]] && pass "policy in force: $src (installed by install.sh)" \
    || fail "policy in force is /etc/toold/policy.json (got $src)"
# rpc METHOD PARAMS_JSON: one JSON-RPC call on the socket, prints the response.
rpc() {
    python3 -c '
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect("/run/toold.sock")
d = json.dumps({"jsonrpc": "2.0", "id": 1, "method": sys.argv[1], "params": json.loads(sys.argv[2])}).encode()
s.sendall(struct.pack(">I", len(d)) + d)
def read(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c: sys.exit("connection closed")
        b += c
    return b
print(read(struct.unpack(">I", read(4))[0]).decode())' "$1" "$2" 2>&1
}
rpc executions.list '{"tool": "exec", "limit": 100}' >"$T/history.json"
n=$(jq "$T/history.json" 'len(d["result"]["executions"])')
[[ "$n" =~ ^[0-9]+$ && "$n" -ge 5 ]] && pass "executions.list: the $n executions above are in the history (toold.db in the StateDirectory)" \
    || { fail "executions.list shows the executions above (got $n)"; detail <"$T/history.json"; }
placement=$(journalctl -u toold --no-pager -o cat 2>/dev/null | grep -m1 -E "CLONE_INTO_CGROUP" || true)
[[ "$placement" == *"are placed in their cgroup by clone3"* ]] \
    && pass "cgroup v2: sandboxes are placed by clone3(CLONE_INTO_CGROUP), no migration" \
    || fail "cgroup v2: sandboxes are placed by clone3(CLONE_INTO_CGROUP) (journal: ${placement:-nothing})"

j=$(journalctl -u toold --no-pager -o cat TOOLD_TOOL=exec 2>/dev/null | grep -c "execution finished" || true)
[[ "$j" -ge 5 ]] && pass "journalctl -u toold TOOLD_TOOL=exec finds the executions ($j)" \
    || { fail "journalctl -u toold TOOLD_TOOL=exec finds the executions (got $j)"; journalctl -u toold --no-pager -o verbose -n 30 2>&1 | detail 60; }

# --- reload and stop under v2 ---------------------------------------------------------------------
pid0=$(systemctl show -p MainPID --value toold.service)
systemctl reload toold.service
for _ in $(seq 50); do [[ $(systemctl show -p ActiveState --value toold.service) == active ]] && break; sleep 0.2; done
if [[ $(systemctl show -p ActiveState --value toold.service) == active && $(systemctl show -p MainPID --value toold.service) == "$pid0" ]] \
    && toolc status >/dev/null 2>&1; then
    pass "systemctl reload toold: active again, same pid, answering"
else
    fail "systemctl reload toold"
    systemctl status --no-pager toold.service 2>&1 | detail
fi
if [[ $(systemctl show -p ActiveState --value toold.service) == active ]] && systemctl stop toold.service && [[ $(systemctl show -p Result --value toold.service) == success ]]; then
    pass "systemctl stop toold: Result=success"
else
    fail "systemctl stop toold: Result=$(systemctl show -p Result --value toold.service)"
fi

if ((failed)); then
    echo "VMCHECK journal of toold:"
    journalctl -u toold --no-pager -n 80 -o short-monotonic 2>&1 | detail 80
fi
echo "VMCHECK END $passed passed, $failed failed (guest up $(cut -d" " -f1 /proc/uptime) s)"
systemctl poweroff --no-block
