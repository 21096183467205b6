/* Paho C (MQTTClient, synchronous: no callbacks, so no background thread) end-to-end benchmark
 * client. QoS 1 window: at most WINDOW publishes awaiting PUBACK, kept by waiting for the oldest
 * token (MQTTClient_waitForCompletion) before the next publish; maxInflightMessages = WINDOW.
 * Paho offers no TCP_NODELAY option. Arguments and output: bench_common.h. */
#include <MQTTClient.h>
#include <unistd.h>

#include "bench_common.h"

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
    long received = 0;
    while (received < a.count) {
      char* topic = NULL;
      int topic_len = 0;
      MQTTClient_message* msg = NULL;
      rc = MQTTClient_receive(c, &topic, &topic_len, &msg, 5000);
      if (rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED) return die("receive", rc);
      if (msg == NULL) break; /* 5 s without a message: the rest was lost */
      res.t_end_ns = bench_now_ns();
      if (received++ == 0) res.t_first_ns = res.t_end_ns;
      MQTTClient_freeMessage(&msg);
      MQTTClient_free(topic);
    }
    res.cpu_us = bench_cpu_us() - cpu0;
    res.messages = received;
  } else if (a.mode == BENCH_PUB) {
    MQTTClient_deliveryToken* tokens = calloc((size_t)a.window, sizeof *tokens);
    int64_t cpu0 = bench_cpu_us();
    res.t_start_ns = bench_now_ns();
    for (long i = 0; i < a.count; ++i) {
      MQTTClient_deliveryToken* slot = &tokens[i % a.window];
      if (a.qos > 0 && i >= a.window) {
        rc = MQTTClient_waitForCompletion(c, *slot, 5000);
        if (rc != MQTTCLIENT_SUCCESS) return die("waitForCompletion", rc);
      }
      rc = MQTTClient_publish(c, a.topic, (int)a.payload, payload, a.qos, 0, slot);
      if (rc != MQTTCLIENT_SUCCESS) return die("publish", rc);
    }
    if (a.qos > 0) {
      for (long i = a.count > a.window ? a.count - a.window : 0; i < a.count; ++i) {
        rc = MQTTClient_waitForCompletion(c, tokens[i % a.window], 5000);
        if (rc != MQTTCLIENT_SUCCESS) return die("waitForCompletion", rc);
      }
    }
    res.t_end_ns = bench_now_ns();
    res.cpu_us = bench_cpu_us() - cpu0;
    res.messages = a.count;
    free(tokens);
  } else {
    int64_t* rtts = malloc(sizeof *rtts * (size_t)a.count);
    int64_t cpu0 = bench_cpu_us();
    res.t_start_ns = bench_now_ns();
    for (long i = 0; i < a.count; ++i) {
      int64_t t0 = bench_now_ns();
      MQTTClient_deliveryToken token;
      rc = MQTTClient_publish(c, a.topic, (int)a.payload, payload, 1, 0, &token);
      if (rc != MQTTCLIENT_SUCCESS) return die("publish", rc);
      rc = MQTTClient_waitForCompletion(c, token, 5000);
      if (rc != MQTTCLIENT_SUCCESS) return die("waitForCompletion", rc);
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
