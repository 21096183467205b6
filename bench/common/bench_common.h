/* Shared by the end-to-end benchmark programs (C and C++): argument parsing, the process's own
 * CPU time and peak RSS, a monotonic clock comparable across processes, latency percentiles and
 * the one JSON line each program prints. Every program takes the same arguments:
 *
 *   <prog> pub|sub|rtt HOST PORT VERSION(311|5) QOS COUNT PAYLOAD_BYTES WINDOW TOPIC
 *
 *   pub  publishes COUNT messages at QOS; at QoS 1 at most WINDOW unacknowledged at once.
 *   sub  subscribes to TOPIC at QOS, prints "READY" once subscribed, counts arrivals until COUNT
 *        arrived or nothing came for 5 s.
 *   rtt  COUNT times: publish at QoS 1 and wait for the PUBACK; records each round trip.
 *
 * Output: one JSON object on the last line of stdout. CPU and times cover the measured phase
 * only (after CONNECT/SUBSCRIBE, before DISCONNECT); peak RSS is the process's. */
#ifndef EDGEKIT_BENCH_COMMON_H
#define EDGEKIT_BENCH_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

enum bench_mode { BENCH_PUB, BENCH_SUB, BENCH_RTT };

struct bench_args {
  enum bench_mode mode;
  const char* host;
  int port;
  int version; /* 311 or 5 */
  int qos;
  long count;
  long payload;
  long window;
  const char* topic;
};

static inline int bench_parse(int argc, char** argv, struct bench_args* a) {
  if (argc != 10) {
    fprintf(stderr, "usage: %s pub|sub|rtt HOST PORT VERSION(311|5) QOS COUNT BYTES WINDOW TOPIC\n",
            argv[0]);
    return 0;
  }
  if (strcmp(argv[1], "pub") == 0) a->mode = BENCH_PUB;
  else if (strcmp(argv[1], "sub") == 0) a->mode = BENCH_SUB;
  else if (strcmp(argv[1], "rtt") == 0) a->mode = BENCH_RTT;
  else return 0;
  a->host = argv[2];
  a->port = atoi(argv[3]);
  a->version = atoi(argv[4]);
  a->qos = atoi(argv[5]);
  a->count = atol(argv[6]);
  a->payload = atol(argv[7]);
  a->window = atol(argv[8]);
  a->topic = argv[9];
  if (a->version != 311 && a->version != 5) return 0;
  if (a->qos < 0 || a->qos > 1 || a->count <= 0 || a->payload < 0 || a->window <= 0) return 0;
  return 1;
}

static inline int64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* user + system CPU of this process (all threads), microseconds. */
static inline int64_t bench_cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 + ru.ru_utime.tv_usec +
         ru.ru_stime.tv_usec;
}

/* Peak resident set of this process, KB: VmHWM from /proc/self/status. Not ru_maxrss: Linux
 * carries ru_maxrss over fork and execve, so a small client started by a large runner would
 * report the runner's peak. */
static inline long bench_maxrss_kb(void) {
  long kb = -1;
  char line[256];
  FILE* f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmHWM:", 6) == 0) {
      kb = atol(line + 6);
      break;
    }
  }
  fclose(f);
  return kb;
}

static int bench_cmp_i64(const void* a, const void* b) {
  const int64_t x = *(const int64_t*)a, y = *(const int64_t*)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile of n samples (sorts them). */
static inline double bench_percentile_us(int64_t* ns, long n, double p) {
  if (n <= 0) return 0;
  qsort(ns, (size_t)n, sizeof ns[0], bench_cmp_i64);
  long rank = (long)(p / 100.0 * (double)n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return (double)ns[rank - 1] / 1000.0;
}

struct bench_result {
  const char* client;
  const struct bench_args* args;
  long messages;      /* published (pub/rtt) or received (sub) */
  int64_t t_start_ns; /* first publish / subscription ready */
  int64_t t_first_ns; /* sub: first arrival */
  int64_t t_end_ns;   /* last publish completed / last arrival */
  int64_t cpu_us;
  double p50_us, p99_us; /* rtt only */
};

static inline void bench_print(const struct bench_result* r) {
  static const char* modes[] = {"pub", "sub", "rtt"};
  printf("{\"client\":\"%s\",\"mode\":\"%s\",\"version\":%d,\"qos\":%d,\"window\":%ld,"
         "\"payload\":%ld,\"requested\":%ld,\"messages\":%ld,\"t_start_ns\":%lld,"
         "\"t_first_ns\":%lld,\"t_end_ns\":%lld,\"cpu_us\":%lld,\"maxrss_kb\":%ld,"
         "\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
         r->client, modes[r->args->mode], r->args->version, r->args->qos, r->args->window,
         r->args->payload, r->args->count, r->messages, (long long)r->t_start_ns,
         (long long)r->t_first_ns, (long long)r->t_end_ns, (long long)r->cpu_us,
         bench_maxrss_kb(), r->p50_us, r->p99_us);
  fflush(stdout);
}

static inline void bench_ready(void) {
  printf("READY\n");
  fflush(stdout);
}

#endif
