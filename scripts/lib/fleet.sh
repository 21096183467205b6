# Starts and stops the secured system on free loopback ports: fleetd (state in a folder) and a
# Mosquitto whose device listener requires mutual TLS and loads edgekit's plugin. Source it, then:
#   fleet_pki DIR           a throw-away CA and a broker certificate for localhost (openssl CLI):
#                           DIR/ca.crt ca.key server.crt server.key
#   fleet_start BIN DIR [--own-ca]
#                           BIN: the build folder holding services/fleetd/{fleetd,
#                           libedgekit_mosquitto_plugin.so} (and tools/edgekit/edgekit for
#                           --own-ca); DIR: a folder for the state, logs and configuration
#                           (DIR/pki from fleet_pki: the broker's server certificate, and the CA
#                           the broker trusts for devices; the listener also trusts the CAs
#                           registered in fleetd, DIR/state/broker-cas, for JITP). --own-ca:
#                           fleetd creates its own CA (keys generated in an edgekit token in
#                           DIR/ca-token, PIN in DIR/ca.pin) and the broker trusts its chain
#                           instead. Sets FLEETD_PID, FLEET_MOSQ_PID, FLEET_LINK_PORT (fleetd's
#                           plain listener), FLEET_TLS_PORT (devices), FLEET_ADMIN_URL,
#                           EDGEKIT_FLEET_URL and EDGEKIT_FLEET_TOKEN_FILE (exported for
#                           `edgekit fleet`).
#   fleet_stop              SIGTERM to both, waits; returns non-zero when fleetd did not stop
#                           cleanly (exit 0). Safe to call twice.
#   free_port               prints a loopback TCP port nothing answers on.
#   fleet_jitp EDGEKIT DIR  registers DIR/ca.crt (a throw-away device CA) in the running fleetd
#                           for just-in-time provisioning with a template that makes each
#                           certificate's CN its thing (default thing policy); EDGEKIT: the
#                           edgekit command. The broker trusts it only if fleet_start found its
#                           state's broker-cas folder (mkdir -p <its DIR>/state/broker-cas first).
# FLEET_BROKER_EXTRA, when set, is appended to the broker's configuration; FLEET_FLEETD_FLAGS,
# when set, adds flags to fleetd's command line (split at spaces); FLEET_MOSQ_PRELOAD, when set,
# is the broker's LD_PRELOAD; fleet_start sets and exports it to the AddressSanitizer runtime
# when the plugin comes from a sanitized build (the suite's dev build), which the broker must load
# first.

free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free loopback port found" >&2
  return 1
}

# Waits up to $3 tenths of a second for file $1 to contain $2; gives up early when one of the
# process ids that follow has exited.
wait_for_text() {
  local file=$1 text=$2 tenths=$3 i p
  shift 3
  for i in $(seq 1 "$tenths"); do
    if grep -q -- "$text" "$file" 2>/dev/null; then return 0; fi
    for p in "$@"; do kill -0 "$p" 2>/dev/null || return 1; done
    sleep 0.1
  done
  return 1
}

fleet_pki() {
  local d=$1
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -sha256 -nodes -days 30 \
    -subj "/CN=edgekit demo CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  # SHA-256 signatures: small TLS stacks (AWS's embedded demos) refuse SHA-384.
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$d/server.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$d/server.ext" -out "$d/server.crt" 2>/dev/null
}

fleet_start() {
  local bin=$1 dir=$2 own_ca=${3:-}
  local ca_flags=() cafile=$dir/pki/ca.crt
  mkdir -p "$dir/state"
  if [ "$own_ca" = --own-ca ]; then
    # The CA's own token (not the device's): fleetd generates the root and issuing keys in it.
    local pin
    pin=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
    (umask 077; printf %s "$pin" > "$dir/ca.pin")
    mkdir -p "$dir/ca-token"
    EDGEKIT_TOKEN_DIR=$dir/ca-token EDGEKIT_TOKEN_PIN=$pin \
      EDGEKIT_TOKEN_SO_PIN=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n') \
      "$bin/tools/edgekit/edgekit" token init --label fleetd-ca >/dev/null || return 1
    ca_flags=(--ca-pin-file "$dir/ca.pin" --ca-token-dir "$dir/ca-token" --ca-create-if-missing)
    cafile=$dir/state/ca/chain.pem
  fi
  # free_port only says that nothing answers on a port now: another test of a parallel ctest run
  # may take it before fleetd or Mosquitto binds it ("Address already in use", seen in CI). Such
  # a start is tried again on new ports; any other failure is reported at once.
  local attempt rc
  for attempt in 1 2 3 4 5; do
    rc=0
    fleet_start_once "$bin" "$dir" "$cafile" "${ca_flags[@]}" || rc=$?
    if [ "$rc" -ne 2 ]; then return "$rc"; fi
    echo "fleet_start: a port was taken meanwhile (attempt $attempt); trying new ports" >&2
  done
  echo "fleet_start: no free ports after 5 attempts" >&2
  return 1
}

# One start of fleetd and Mosquitto on new free ports. Returns 0 when both are up, 2 when one of
# them could not bind its port (both stopped again), 1 on any other failure.
fleet_start_once() {
  local bin=$1 dir=$2 cafile=$3
  shift 3
  local ca_flags=("$@")
  local hooks admin
  FLEET_LINK_PORT=$(free_port)
  FLEET_TLS_PORT=$(free_port)
  hooks=$(free_port)
  admin=$(free_port)
  local extra_flags=()
  read -r -a extra_flags <<< "${FLEET_FLEETD_FLAGS:-}"
  "$bin/services/fleetd/fleetd" --state-dir "$dir/state" --broker-port "$FLEET_LINK_PORT" \
    --hooks-port "$hooks" --admin-port "$admin" --log-format text \
    --reconnect-base-ms 100 --reconnect-cap-ms 1000 "${ca_flags[@]}" "${extra_flags[@]}" \
    2> "$dir/fleetd.log" &
  FLEETD_PID=$!
  # 30 s: on a loaded machine the first start (schema, CA keys made in the token) has been seen
  # to take more than 10 s; a fleetd that exits ends the wait at once.
  if ! wait_for_text "$dir/fleetd.log" admin.listening 300 "$FLEETD_PID"; then
    local why="still running, not listening after 30 s"
    if ! kill -0 "$FLEETD_PID" 2>/dev/null; then
      local rc=0
      wait "$FLEETD_PID" || rc=$?
      why="exited with status $rc"
    fi
    # fleetd says "cannot listen on HOST:PORT" when a port of its own was taken.
    if grep -qE "Address already in use|cannot listen on" "$dir/fleetd.log"; then
      fleet_stop || true
      return 2
    fi
    echo "fleetd did not start ($why); its log:" >&2
    cat "$dir/fleetd.log" >&2
    return 1
  fi
  # The CAs registered through fleetd (its own chain included), which fleetd keeps in a hashed
  # folder and rewrites at every registration: OpenSSL looks them up at each handshake, so a CA
  # registered for just-in-time provisioning is trusted without restarting the broker
  # (services/fleetd/src/ca/broker_trust.hpp).
  local capath_line=""
  if [ -d "$dir/state/broker-cas" ]; then capath_line="capath $dir/state/broker-cas"; fi
  # Started as root, Mosquitto would switch to the user `mosquitto`, which cannot read the state
  # folder's hooks token (mode 600): keep the current user.
  local user_line=""
  if [ "$(id -u)" = 0 ]; then user_line="user root"; fi
  cat > "$dir/mosquitto.conf" <<EOF
$user_line
per_listener_settings false
allow_anonymous false
set_tcp_nodelay true
listener $FLEET_LINK_PORT 127.0.0.1
listener $FLEET_TLS_PORT 127.0.0.1
cafile $cafile
$capath_line
certfile $dir/pki/server.crt
keyfile $dir/pki/server.key
require_certificate true
tls_version tlsv1.2
plugin $bin/services/fleetd/libedgekit_mosquitto_plugin.so
plugin_opt_hooks_url http://127.0.0.1:$hooks
plugin_opt_hooks_token_file $dir/state/hooks.token
plugin_opt_timeout_ms 2000
# fleetd's link carries every device's requests: Mosquitto's default of 1,000 queued messages per
# client drops the rest silently under a burst (docs/fleetd.md, the device listener).
max_queued_messages 100000
${FLEET_BROKER_EXTRA:-}
EOF
  local mosq plugin_libs
  mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
  # (ldd's whole output first: `grep -q` ending a pipe early fails it under pipefail.)
  plugin_libs=$(ldd "$bin/services/fleetd/libedgekit_mosquitto_plugin.so" 2>/dev/null || true)
  if [ -z "${FLEET_MOSQ_PRELOAD:-}" ] && grep -q libasan <<< "$plugin_libs"; then
    FLEET_MOSQ_PRELOAD=$(${CXX:-c++} -print-file-name=libasan.so)
    export FLEET_MOSQ_PRELOAD
  fi
  LD_PRELOAD=${FLEET_MOSQ_PRELOAD:-} "$mosq" -c "$dir/mosquitto.conf" > "$dir/mosquitto.log" 2>&1 &
  FLEET_MOSQ_PID=$!
  # Up when fleetd's own link is admitted and subscribed.
  if ! wait_for_text "$dir/fleetd.log" broker.subscribed 100 "$FLEETD_PID" "$FLEET_MOSQ_PID"; then
    if grep -q "Address already in use" "$dir/mosquitto.log"; then
      fleet_stop || true
      return 2
    fi
    echo "fleetd's link to Mosquitto did not come up; the logs:" >&2
    cat "$dir/mosquitto.log" "$dir/fleetd.log" >&2
    return 1
  fi
  FLEET_ADMIN_URL=http://127.0.0.1:$admin
  export EDGEKIT_FLEET_URL=$FLEET_ADMIN_URL
  export EDGEKIT_FLEET_TOKEN_FILE=$dir/state/admin.token
}

fleet_jitp() {
  local edgekit=$1 dir=$2
  cat > "$dir/jitp.json" <<'JSON'
{
  "Parameters": {
    "AWS::IoT::Certificate::CommonName": {"Type": "String"},
    "AWS::IoT::Certificate::Id": {"Type": "String"}
  },
  "Resources": {
    "thing": {"Type": "AWS::IoT::Thing", "Properties": {
      "ThingName": {"Ref": "AWS::IoT::Certificate::CommonName"}}},
    "certificate": {"Type": "AWS::IoT::Certificate", "Properties": {
      "CertificateId": {"Ref": "AWS::IoT::Certificate::Id"}, "Status": "ACTIVE"}}
  }
}
JSON
  "$edgekit" fleet templates create jitp --type JITP --enabled --body "$dir/jitp.json" >/dev/null &&
    "$edgekit" fleet cas register --pem "$dir/ca.crt" --active --auto-registration \
      --template jitp >/dev/null
}

fleet_stop() {
  local rc=0
  if [ -n "${FLEETD_PID:-}" ]; then
    kill -TERM "$FLEETD_PID" 2>/dev/null || true
    wait "$FLEETD_PID" 2>/dev/null || rc=$?
    FLEETD_PID=
  fi
  if [ -n "${FLEET_MOSQ_PID:-}" ]; then
    kill -TERM "$FLEET_MOSQ_PID" 2>/dev/null || true
    wait "$FLEET_MOSQ_PID" 2>/dev/null || true
    FLEET_MOSQ_PID=
  fi
  return "$rc"
}
