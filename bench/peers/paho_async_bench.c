/* Paho C MQTTAsync under load: THREADS threads call MQTTAsync_sendMessage on one client (Paho's
 * own send and receive threads do the I/O). maxInflight = WINDOW (connect options) and
 * maxBufferedMessages = WINDOW (create options); the window of bench_mt.h is given back in the
 * response's onSuccess / onFailure (QoS 0: the packet was written; QoS 1: PUBACK).
 * Paho offers no TCP_NODELAY option. Arguments and output: bench_mt.h. */
#include <MQTTAsync.h>
#include <unistd.h>

#include "bench_mt.h"

struct ctx {
  MQTTAsync client;
  struct bench_mt* mt;
  const struct bench_args* a;
  char* payload;
  volatile int connected; /* 1 connected, -1 failed */
  long failures;
};

static void on_connected(void* u, MQTTAsync_successData* d) {
  (void)d;
  __atomic_store_n(&((struct ctx*)u)->connected, 1, __ATOMIC_RELEASE);
}
static void on_connect_failed(void* u, MQTTAsync_failureData* d) {
  fprintf(stderr, "paho_async_bench: connect failed: %d\n", d ? d->code : 0);
  __atomic_store_n(&((struct ctx*)u)->connected, -1, __ATOMIC_RELEASE);
}
static void on_sent(void* u, MQTTAsync_successData* d) {
  (void)d;
  bench_mt_complete(((struct ctx*)u)->mt);
}
static void on_send_failed(void* u, MQTTAsync_failureData* d) {
  (void)d;
  struct ctx* c = u;
  __atomic_add_fetch(&c->failures, 1, __ATOMIC_RELAXED);
  bench_mt_complete(c->mt);
}
static int on_message(void* u, char* topic, int len, MQTTAsync_message* m) {
  (void)u, (void)len;
  MQTTAsync_freeMessage(&m);
  MQTTAsync_free(topic);
  return 1;
}
static void on_lost(void* u, char* cause) {
  (void)u;
  fprintf(stderr, "paho_async_bench: connection lost: %s\n", cause ? cause : "");
}

static int publish_one(void* user, long thread, long i) {
  (void)thread, (void)i;
  struct ctx* c = user;
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  ro.onSuccess = on_sent;
  ro.onFailure = on_send_failed;
  ro.context = c;
  MQTTAsync_message msg = MQTTAsync_message_initializer;
  msg.payload = c->payload;
  msg.payloadlen = (int)c->a->payload;
  msg.qos = c->a->qos;
  msg.retained = 0;
  int rc = MQTTAsync_sendMessage(c->client, c->a->topic, &msg, &ro);
  if (rc != MQTTASYNC_SUCCESS) {
    fprintf(stderr, "paho_async_bench: sendMessage: %d\n", rc);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  struct bench_args a;
  long threads;
  if (!bench_mt_parse(argc, argv, &a, &threads)) return 2;
  if (a.version != 311) {
    fprintf(stderr, "paho_async_bench: only MQTT 3.1.1 here\n");
    return 2;
  }
  struct ctx c = {0};
  struct bench_mt mt = {0};
  c.mt = &mt;
  c.a = &a;
  char uri[300], id[64];
  snprintf(uri, sizeof uri, "tcp://%s:%d", a.host, a.port);
  snprintf(id, sizeof id, "paho-async-%d", (int)getpid());
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  co.sendWhileDisconnected = 0;
  co.maxBufferedMessages = (int)a.window;
  int rc = MQTTAsync_createWithOptions(&c.client, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
  if (rc != MQTTASYNC_SUCCESS) {
    fprintf(stderr, "paho_async_bench: create: %d\n", rc);
    return 1;
  }
  MQTTAsync_setCallbacks(c.client, &c, on_lost, on_message, NULL);
  MQTTAsync_connectOptions o = MQTTAsync_connectOptions_initializer;
  o.MQTTVersion = MQTTVERSION_3_1_1;
  o.keepAliveInterval = 60;
  o.cleansession = 1;
  o.maxInflight = (int)a.window;
  o.onSuccess = on_connected;
  o.onFailure = on_connect_failed;
  o.context = &c;
  rc = MQTTAsync_connect(c.client, &o);
  if (rc != MQTTASYNC_SUCCESS) {
    fprintf(stderr, "paho_async_bench: connect: %d\n", rc);
    return 1;
  }
  for (int i = 0; i < 500 && __atomic_load_n(&c.connected, __ATOMIC_ACQUIRE) == 0; ++i) usleep(10000);
  if (c.connected != 1) {
    fprintf(stderr, "paho_async_bench: not connected\n");
    return 1;
  }
  c.payload = malloc((size_t)a.payload + 1);
  memset(c.payload, 'x', (size_t)a.payload);

  mt.args = &a;
  mt.threads = threads;
  mt.publish = publish_one;
  mt.user = &c;
  struct bench_result res = {0};
  res.client = "paho-c-async";
  res.args = &a;
  const int failed = bench_mt_run(&mt, &res);
  MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
  d.timeout = 1000;
  (void)MQTTAsync_disconnect(c.client, &d);
  usleep(100000);
  char extra[64];
  snprintf(extra, sizeof extra, "\"failed_outcomes\":%ld", c.failures);
  bench_mt_print(&res, threads, extra);
  MQTTAsync_destroy(&c.client);
  free(c.payload);
  return failed || c.failures ? 3 : 0;
}
