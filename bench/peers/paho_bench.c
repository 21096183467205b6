/* Paho C MQTTClient end-to-end benchmark client, in its callback mode (MQTTClient_setCallbacks:
 * Paho's receive thread reads the socket and calls back; the main thread publishes). The
 * synchronous mode without callbacks is not usable for QoS 1 throughput: waitForCompletion runs
 * MQTTClient_yield, which loops for 100 ms, so each PUBACK costs ~100 ms.
 * QoS 1 window: at most WINDOW publishes awaiting PUBACK (counted in deliveryComplete, the main
 * thread waits on a condition variable); maxInflightMessages = WINDOW.
 * Paho offers no TCP_NODELAY option. Arguments and output: bench_common.h. */
#include <MQTTClient.h>
#include <pthread.h>
#include <unistd.h>

#include "bench_common.h"

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static long g_outstanding, g_received;
static int64_t g_first_ns, g_last_ns;
static int g_lost;

static void on_lost(void* ctx, char* cause) {
  (void)ctx, (void)cause;
  pthread_mutex_lock(&g_mu);
  g_lost = 1;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}
static int on_message(void* ctx, char* topic, int len, MQTTClient_message* m) {
  (void)ctx, (void)len;
  int64_t now = bench_now_ns();
  pthread_mutex_lock(&g_mu);
  g_last_ns = now;
  if (g_received++ == 0) g_first_ns = now;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
  MQTTClient_freeMessage(&m);
  MQTTClient_free(topic);
  return 1;
}
static void on_delivered(void* ctx, MQTTClient_deliveryToken dt) {
  (void)ctx, (void)dt;
  pthread_mutex_lock(&g_mu);
  g_outstanding--;
  pthread_cond_broadcast(&g_cv);
  pthread_mutex_unlock(&g_mu);
}

/* Waits until outstanding < limit; 0 on time-out or connection loss. */
static int wait_outstanding_below(long limit) {
  int ok = 1;
  pthread_mutex_lock(&g_mu);
  while (g_outstanding >= limit && !g_lost) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 5;
    if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) != 0) {
      ok = 0;
      break;
    }
  }
  if (g_lost) ok = 0;
  pthread_mutex_unlock(&g_mu);
  return ok;
}

static int die(const char* what, int rc) {
  fprintf(stderr, "paho_bench: %s: %d\n", what, rc);
  return 1;
}

int main(int argc, char** argv) {
  struct bench_args a;
  if (!bench_parse(argc, argv, &a)) return 2;
  if (a.version != 311) {
    fprintf(stderr, "paho_bench: only MQTT 3.1.1 here\n");
    return 2;
  }
  char uri[300], id[64];
  snprintf(uri, sizeof uri, "tcp://%s:%d", a.host, a.port);
  snprintf(id, sizeof id, "paho-%s-%d", argv[1], (int)getpid());
  MQTTClient c;
  int rc = MQTTClient_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
  if (rc != MQTTCLIENT_SUCCESS) return die("create", rc);
  rc = MQTTClient_setCallbacks(c, NULL, on_lost, on_message, on_delivered);
  if (rc != MQTTCLIENT_SUCCESS) return die("setCallbacks", rc);
  MQTTClient_connectOptions o = MQTTClient_connectOptions_initializer;
  o.MQTTVersion = MQTTVERSION_3_1_1;
  o.keepAliveInterval = 60;
  o.cleansession = 1;
  o.maxInflightMessages = (int)a.window;
  rc = MQTTClient_connect(c, &o);
  if (rc != MQTTCLIENT_SUCCESS) return die("connect", rc);

  char* payload = malloc((size_t)a.payload + 1);
  memset(payload, 'x', (size_t)a.payload);
  struct bench_result res = {0};
  res.client = "paho-c";
  res.args = &a;

  if (a.mode == BENCH_SUB) {
    rc = MQTTClient_subscribe(c, a.topic, a.qos);
    if (rc != MQTTCLIENT_SUCCESS) return die("subscribe", rc);
    bench_ready();
    int64_t cpu0 = bench_cpu_us();
    res.t_start_ns = bench_now_ns();
    pthread_mutex_lock(&g_mu);
    while (g_received < a.count && !g_lost) {
      long before = g_received;
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += 5;
      if (pthread_cond_timedwait(&g_cv, &g_mu, &ts) != 0 && g_received == before) break;
    }
    res.messages = g_received;
    res.t_first_ns = g_first_ns;
    res.t_end_ns = g_last_ns;
    pthread_mutex_unlock(&g_mu);
    res.cpu_us = bench_cpu_us() - cpu0;
  } else if (a.mode == BENCH_PUB) {
    int64_t cpu0 = bench_cpu_us();
    res.t_start_ns = bench_now_ns();
    for (long i = 0; i < a.count; ++i) {
      if (a.qos > 0) {
        if (!wait_outstanding_below(a.window)) return die("wait for PUBACK", -1);
        pthread_mutex_lock(&g_mu);
        g_outstanding++;
        pthread_mutex_unlock(&g_mu);
      }
      rc = MQTTClient_publish(c, a.topic, (int)a.payload, payload, a.qos, 0, NULL);
      if (rc != MQTTCLIENT_SUCCESS) return die("publish", rc);
    }
    if (!wait_outstanding_below(1)) return die("wait for PUBACK", -1);
    res.t_end_ns = bench_now_ns();
    res.cpu_us = bench_cpu_us() - cpu0;
    res.messages = a.count;
  } else {
    int64_t* rtts = malloc(sizeof *rtts * (size_t)a.count);
    int64_t cpu0 = bench_cpu_us();
    res.t_start_ns = bench_now_ns();
    for (long i = 0; i < a.count; ++i) {
      int64_t t0 = bench_now_ns();
      pthread_mutex_lock(&g_mu);
      g_outstanding = 1;
      pthread_mutex_unlock(&g_mu);
      rc = MQTTClient_publish(c, a.topic, (int)a.payload, payload, 1, 0, NULL);
      if (rc != MQTTCLIENT_SUCCESS) return die("publish", rc);
      if (!wait_outstanding_below(1)) return die("wait for PUBACK", -1);
      rtts[i] = bench_now_ns() - t0;
    }
    res.t_end_ns = bench_now_ns();
    res.cpu_us = bench_cpu_us() - cpu0;
    res.messages = a.count;
    res.p50_us = bench_percentile_us(rtts, a.count, 50);
    res.p99_us = bench_percentile_us(rtts, a.count, 99);
    free(rtts);
  }
  MQTTClient_disconnect(c, 1000);
  bench_print(&res);
  MQTTClient_destroy(&c);
  free(payload);
  return res.messages == a.count ? 0 : 3;
}
