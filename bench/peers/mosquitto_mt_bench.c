/* libmosquitto under load: THREADS threads call mosquitto_publish (its thread-safe publish) on one
 * handle whose network thread runs by mosquitto_loop_start. TCP_NODELAY on;
 * mosquitto_max_inflight_messages_set(WINDOW); the window of bench_mt.h is given back in the
 * on_publish callback (libmosquitto calls it for QoS 0 once the packet is written, for QoS 1 on
 * PUBACK). Arguments and output: bench_mt.h. */
#include <mosquitto.h>
#include <unistd.h>

#include "bench_mt.h"

struct ctx {
  struct mosquitto* m;
  struct bench_mt* mt;
  const struct bench_args* a;
  char* payload;
  volatile int connected;
};

static void on_connect(struct mosquitto* m, void* u, int rc) {
  (void)m;
  if (rc == 0) __atomic_store_n(&((struct ctx*)u)->connected, 1, __ATOMIC_RELEASE);
}
static void on_publish(struct mosquitto* m, void* u, int mid) {
  (void)m, (void)mid;
  bench_mt_complete(((struct ctx*)u)->mt);
}

static int publish_one(void* user, long thread, long i) {
  (void)thread, (void)i;
  struct ctx* c = user;
  int rc = mosquitto_publish(c->m, NULL, c->a->topic, (int)c->a->payload, c->payload, c->a->qos,
                             false);
  if (rc != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "mosquitto_mt_bench: publish: %s\n", mosquitto_strerror(rc));
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  struct bench_args a;
  long threads;
  if (!bench_mt_parse(argc, argv, &a, &threads)) return 2;
  mosquitto_lib_init();
  struct ctx c = {0};
  struct bench_mt mt = {0};
  c.mt = &mt;
  c.a = &a;
  char id[64];
  snprintf(id, sizeof id, "mosq-mt-%d", (int)getpid());
  c.m = mosquitto_new(id, true, &c);
  if (!c.m) return 1;
  mosquitto_int_option(c.m, MOSQ_OPT_PROTOCOL_VERSION,
                       a.version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
  mosquitto_int_option(c.m, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_max_inflight_messages_set(c.m, (unsigned)a.window);
  mosquitto_connect_callback_set(c.m, on_connect);
  mosquitto_publish_callback_set(c.m, on_publish);
  int rc = mosquitto_connect(c.m, a.host, a.port, 60);
  if (rc != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "mosquitto_mt_bench: connect: %s\n", mosquitto_strerror(rc));
    return 1;
  }
  rc = mosquitto_loop_start(c.m);
  if (rc != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "mosquitto_mt_bench: loop_start: %s\n", mosquitto_strerror(rc));
    return 1;
  }
  for (int i = 0; i < 500 && !__atomic_load_n(&c.connected, __ATOMIC_ACQUIRE); ++i) usleep(10000);
  if (!c.connected) {
    fprintf(stderr, "mosquitto_mt_bench: not connected\n");
    return 1;
  }
  c.payload = malloc((size_t)a.payload + 1);
  memset(c.payload, 'x', (size_t)a.payload);

  mt.args = &a;
  mt.threads = threads;
  mt.publish = publish_one;
  mt.user = &c;
  struct bench_result res = {0};
  res.client = "libmosquitto-mt";
  res.args = &a;
  const int failed = bench_mt_run(&mt, &res);
  mosquitto_disconnect(c.m);
  mosquitto_loop_stop(c.m, false);
  bench_mt_print(&res, threads, "");
  mosquitto_destroy(c.m);
  free(c.payload);
  mosquitto_lib_cleanup();
  return failed ? 3 : 0;
}
