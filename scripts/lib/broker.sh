# Starts and stops a private Mosquitto on a free loopback port. Source it, then:
#   broker_start      sets BROKER_PORT, BROKER_PID, BROKER_DIR
#   broker_stop       stops it and removes its files (safe to call twice; also set as EXIT trap)
# BROKER_EXTRA_CONF, when set, is appended to the generated mosquitto.conf (one setting a line).

broker_start() {
  local mosq
  mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  BROKER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/edgekit-broker.XXXXXX")
  local try port
  for try in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    # Something already answers there: not free.
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    # set_tcp_nodelay: without it Mosquitto's Nagle delay meets the client's delayed ACK and a
    # QoS 1 round trip can take 40 ms on loopback.
    printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\n' "$port" > "$BROKER_DIR/mosquitto.conf"
    if [ -n "${BROKER_EXTRA_CONF:-}" ]; then printf '%s\n' "$BROKER_EXTRA_CONF" >> "$BROKER_DIR/mosquitto.conf"; fi
    "$mosq" -c "$BROKER_DIR/mosquitto.conf" > "$BROKER_DIR/mosquitto.log" 2>&1 &
    BROKER_PID=$!
    local i
    for i in $(seq 1 50); do
      if ! kill -0 "$BROKER_PID" 2>/dev/null; then break; fi
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        BROKER_PORT=$port
        return 0
      fi
      sleep 0.1
    done
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
  done
  echo "could not start mosquitto; its last log:" >&2
  cat "$BROKER_DIR/mosquitto.log" >&2 || true
  return 1
}

broker_stop() {
  if [ -n "${BROKER_PID:-}" ]; then
    kill "$BROKER_PID" 2>/dev/null || true
    wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=
  fi
  if [ -n "${BROKER_DIR:-}" ]; then
    rm -rf "$BROKER_DIR"
    BROKER_DIR=
  fi
}
