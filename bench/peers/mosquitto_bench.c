/* libmosquitto end-to-end benchmark client. The application drives the network with
 * mosquitto_loop() (no network thread: libmosquitto's cheapest mode), TCP_NODELAY on, in-flight
 * window set with mosquitto_max_inflight_messages_set. Arguments and output: bench_common.h. */
#include <mosquitto.h>
#include <unistd.h>

#include "bench_common.h"

struct state {
  long outstanding;
  long received;
  int connected;
  int subscribed;
  int64_t first_ns, last_ns;
};

static void on_connect(struct mosquitto* m, void* u, int rc) {
  (void)m;
  if (rc == 0) ((struct state*)u)->connected = 1;
}
static void on_subscribe(struct mosquitto* m, void* u, int mid, int n, const int* granted) {
  (void)m, (void)mid, (void)n, (void)granted;
  ((struct state*)u)->subscribed = 1;
}
static void on_publish(struct mosquitto* m, void* u, int mid) {
  (void)m, (void)mid;
  ((struct state*)u)->outstanding--;
}
static void on_message(struct mosquitto* m, void* u, const struct mosquitto_message* msg) {
  (void)m, (void)msg;
  struct state* s = u;
  s->last_ns = bench_now_ns();
  if (s->received++ == 0) s->first_ns = s->last_ns;
}

static int die(const char* what, int rc) {
  fprintf(stderr, "mosquitto_bench: %s: %s\n", what, mosquitto_strerror(rc));
  return 1;
}

int main(int argc, char** argv) {
  struct bench_args a;
  if (!bench_parse(argc, argv, &a)) return 2;
  mosquitto_lib_init();
  struct state s = {0};
  char id[64];
  snprintf(id, sizeof id, "mosq-%s-%d", argv[1], (int)getpid());
  struct mosquitto* m = mosquitto_new(id, true, &s);
  if (!m) return 1;
  mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION,
                       a.version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
  mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_max_inflight_messages_set(m, (unsigned)a.window);
  mosquitto_connect_callback_set(m, on_connect);
  mosquitto_subscribe_callback_set(m, on_subscribe);
  mosquitto_publish_callback_set(m, on_publish);
  mosquitto_message_callback_set(m, on_message);
  int rc = mosquitto_connect(m, a.host, a.port, 60);
  if (rc != MOSQ_ERR_SUCCESS) return die("connect", rc);
  while (!s.connected) {
    rc = mosquitto_loop(m, 1000, 1);
    if (rc != MOSQ_ERR_SUCCESS) return die("loop", rc);
  }

  char* payload = malloc((size_t)a.payload + 1);
  memset(payload, 'x', (size_t)a.payload);
  struct bench_result res = {0};
  res.client = "libmosquitto";
  res.args = &a;
  int64_t* rtts = NULL;

  if (a.mode == BENCH_SUB) {
    rc = mosquitto_subscribe(m, NULL, a.topic, a.qos);
    if (rc != MOSQ_ERR_SUCCESS) return die("subscribe", rc);
    while (!s.subscribed) {
      rc = mosquitto_loop(m, 1000, 1);
      if (rc != MOSQ_ERR_SUCCESS) return die("loop", rc);
    }
    bench_ready();
    int64_t cpu0 = bench_cpu_us();
    res.t_start_ns = bench_now_ns();
    while (s.received < a.count) {
      long before = s.received;
      int64_t t = bench_now_ns();
      rc = mosquitto_loop(m, 5000, 1);
      if (rc != MOSQ_ERR_SUCCESS) return die("loop", rc);
      if (s.received == before && bench_now_ns() - t > 4000000000LL) break;
    }
    res.cpu_us = bench_cpu_us() - cpu0;
    res.messages = s.received;
    res.t_first_ns = s.first_ns;
    res.t_end_ns = s.last_ns;
  } else if (a.mode == BENCH_PUB) {
    int64_t cpu0 = bench_cpu_us();
    res.t_start_ns = bench_now_ns();
    for (long i = 0; i < a.count; ++i) {
      if (a.qos > 0) {
        while (s.outstanding >= a.window) {
          rc = mosquitto_loop(m, 5000, 1);
          if (rc != MOSQ_ERR_SUCCESS) return die("loop", rc);
        }
        s.outstanding++;
      }
      rc = mosquitto_publish(m, NULL, a.topic, (int)a.payload, payload, a.qos, false);
      if (rc != MOSQ_ERR_SUCCESS) return die("publish", rc);
    }
    /* QoS 0: libmosquitto may still hold queued packets (socket full); flush them. */
    while (s.outstanding > 0 || mosquitto_want_write(m)) {
      rc = mosquitto_loop(m, 5000, 1);
      if (rc != MOSQ_ERR_SUCCESS) return die("loop", rc);
    }
    res.t_end_ns = bench_now_ns();
    res.cpu_us = bench_cpu_us() - cpu0;
    res.messages = a.count;
  } else {
    rtts = malloc(sizeof *rtts * (size_t)a.count);
    int64_t cpu0 = bench_cpu_us();
    res.t_start_ns = bench_now_ns();
    for (long i = 0; i < a.count; ++i) {
      int64_t t0 = bench_now_ns();
      s.outstanding = 1;
      rc = mosquitto_publish(m, NULL, a.topic, (int)a.payload, payload, 1, false);
      if (rc != MOSQ_ERR_SUCCESS) return die("publish", rc);
      while (s.outstanding > 0) {
        rc = mosquitto_loop(m, 5000, 1);
        if (rc != MOSQ_ERR_SUCCESS) return die("loop", rc);
      }
      rtts[i] = bench_now_ns() - t0;
    }
    res.t_end_ns = bench_now_ns();
    res.cpu_us = bench_cpu_us() - cpu0;
    res.messages = a.count;
    res.p50_us = bench_percentile_us(rtts, a.count, 50);
    res.p99_us = bench_percentile_us(rtts, a.count, 99);
  }
  mosquitto_disconnect(m);
  bench_print(&res);
  free(rtts);
  free(payload);
  mosquitto_destroy(m);
  mosquitto_lib_cleanup();
  return res.messages == a.count ? 0 : 3;
}
