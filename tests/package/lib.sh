# tests/package/lib.sh - shared by the package tests (sourced; the caller
# defines fail MESSAGE).

# ready_url LOG PID WHAT [TRIES]: the URL of wispd's ready line in LOG,
# once it is there (fails if PID exits first or it does not come within
# TRIES checks 50 ms apart, default 200)
ready_url() {
    local u=""
    for _ in $(seq "${4:-200}"); do
        u=$(sed -n 's/^wispd: ready on //p' "$1")
        [ -n "$u" ] && break
        kill -0 "$2" 2>/dev/null || { cat "$1" >&2; fail "$3 exited"; }
        sleep 0.05
    done
    [ -n "$u" ] || { cat "$1" >&2; fail "$3 not ready"; }
    echo "$u"
}

# start_broker DIR: a mosquitto on a free loopback port, when
# /usr/sbin/mosquitto is there; sets bpid and mqtt_args (--mqtt URL), both
# empty without one. The caller stops bpid.
start_broker() {
    bpid=""
    mqtt_args=()
    [ -x /usr/sbin/mosquitto ] || return 0
    local port
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$port" >"$1/mosquitto.conf"
    /usr/sbin/mosquitto -c "$1/mosquitto.conf" 2>/dev/null &
    bpid=$!
    mqtt_args=(--mqtt "mqtt://127.0.0.1:$port")
}

# check_tree_mqtt URL PID TREE LOG: the wispd at URL (process PID, started
# with mqtt_args) connects to the broker, and the libmosquitto it dlopened
# is TREE/lib's
check_tree_mqtt() {
    local url=$1 pid=$2 tree=$3 log=$4
    for _ in $(seq 400); do
        curl -fsS "$url/metrics" | grep -q '^wisp_mqtt_connected 1' && break
        sleep 0.05
    done
    curl -fsS "$url/metrics" | grep -q '^wisp_mqtt_connected 1' ||
        fail "the tarball's wispd did not connect to the broker: $(tail -n 5 "$log")"
    grep -q "$tree/lib/libmosquitto\.so" "/proc/$pid/maps" ||
        fail "the tarball's wispd has not mapped $tree/lib/libmosquitto.so.*"
}

# check_tree_dlopen TREE: every library TREE/libexec/wispd dlopens is in TREE/lib
check_tree_dlopen() {
    local so
    for so in $(readelf -W -p .note.dlopen "$1/libexec/wispd" | grep -oE 'lib[a-z0-9_-]+\.so\.[0-9]+'); do
        [ -f "$1/lib/$so" ] || fail "the tarball lacks $so, which wispd dlopens"
    done
}
