/* The 8-thread publishing harness shared by the "many threads, one connection" benchmark programs
 * (bench/agent_mt_bench.cpp, bench/peers/mosquitto_mt_bench.c, bench/peers/paho_async_bench.c).
 * Arguments: those of bench_common.h (mode `pub` only) plus THREADS:
 *
 *   <prog> pub HOST PORT 311 QOS COUNT PAYLOAD_BYTES WINDOW TOPIC THREADS
 *
 * THREADS threads publish COUNT messages in total (COUNT / THREADS each, the first ones one more
 * when it does not divide) through the program's one connection. The window is one POSIX
 * semaphore of WINDOW permits shared by all threads: a thread takes a permit before each publish
 * and the library's completion callback gives it back (QoS 0: the message was written to the
 * socket; QoS 1: its PUBACK arrived). So at most WINDOW messages are queued in or in flight
 * through the library at any time, whichever library it is; the program ends when every permit is
 * back (every completion seen).
 *
 * Output: one JSON line as bench_print, plus "threads" and the program's own extra fields. */
#ifndef EDGEKIT_BENCH_MT_H
#define EDGEKIT_BENCH_MT_H

#include <pthread.h>
#include <semaphore.h>

#include "bench_common.h"

struct bench_mt {
  const struct bench_args* args;
  long threads;
  sem_t window;
  /* Publishes message `i` of thread `thread`; returns 0 on success. Called after a permit was
   * taken; the library's completion must call bench_mt_complete once per successful call. */
  int (*publish)(void* user, long thread, long i);
  void* user;
  pthread_barrier_t start;
  volatile int failed;
};

static inline int bench_mt_parse(int argc, char** argv, struct bench_args* a, long* threads) {
  if (argc != 11 || !bench_parse(10, argv, a) || a->mode != BENCH_PUB) {
    fprintf(stderr,
            "usage: %s pub HOST PORT 311 QOS COUNT BYTES WINDOW TOPIC THREADS\n", argv[0]);
    return 0;
  }
  *threads = atol(argv[10]);
  return *threads > 0 && *threads <= 64;
}

/* The library's completion callback (any thread): gives the message's permit back. */
static inline void bench_mt_complete(struct bench_mt* mt) { sem_post(&mt->window); }

struct bench_mt_thread {
  struct bench_mt* mt;
  long index;
  long count;
};

static void* bench_mt_thread_main(void* p) {
  struct bench_mt_thread* t = (struct bench_mt_thread*)p;
  pthread_barrier_wait(&t->mt->start);
  for (long i = 0; i < t->count && !t->mt->failed; ++i) {
    while (sem_wait(&t->mt->window) != 0) {
    }
    if (t->mt->publish(t->mt->user, t->index, i) != 0) {
      sem_post(&t->mt->window);
      t->mt->failed = 1;
    }
  }
  return NULL;
}

/* Runs the threads; fills t_start_ns, t_end_ns, cpu_us, messages of `res`. Returns 0 on success.
 * CPU covers the publishing phase of the whole process (every thread, the library's included). */
static inline int bench_mt_run(struct bench_mt* mt, struct bench_result* res) {
  enum { kMaxThreads = 64 };
  pthread_t tids[kMaxThreads];
  struct bench_mt_thread ts[kMaxThreads];
  const long n = mt->threads;
  const long window = mt->args->window;
  sem_init(&mt->window, 0, (unsigned)window);
  pthread_barrier_init(&mt->start, NULL, (unsigned)(n + 1));
  mt->failed = 0;
  for (long k = 0; k < n; ++k) {
    ts[k].mt = mt;
    ts[k].index = k;
    ts[k].count = mt->args->count / n + (k < mt->args->count % n ? 1 : 0);
    if (pthread_create(&tids[k], NULL, bench_mt_thread_main, &ts[k]) != 0) return 1;
  }
  const int64_t cpu0 = bench_cpu_us();
  res->t_start_ns = bench_now_ns();
  pthread_barrier_wait(&mt->start);
  for (long k = 0; k < n; ++k) pthread_join(tids[k], NULL);
  /* Every permit back: every completion arrived. 30 s bound against a lost completion. */
  for (long k = 0; k < window; ++k) {
    struct timespec ts2;
    clock_gettime(CLOCK_REALTIME, &ts2);
    ts2.tv_sec += 30;
    if (sem_timedwait(&mt->window, &ts2) != 0) {
      fprintf(stderr, "bench: %ld completions missing after 30 s\n", window - k);
      return 1;
    }
  }
  res->t_end_ns = bench_now_ns();
  res->cpu_us = bench_cpu_us() - cpu0;
  res->messages = mt->failed ? 0 : mt->args->count;
  pthread_barrier_destroy(&mt->start);
  sem_destroy(&mt->window);
  return mt->failed;
}

/* bench_print's fields plus "threads" and `extra` (a JSON fragment without braces, may be ""). */
static inline void bench_mt_print(const struct bench_result* r, long threads, const char* extra) {
  printf("{\"client\":\"%s\",\"mode\":\"pub\",\"version\":%d,\"qos\":%d,\"window\":%ld,"
         "\"payload\":%ld,\"requested\":%ld,\"messages\":%ld,\"threads\":%ld,\"t_start_ns\":%lld,"
         "\"t_end_ns\":%lld,\"cpu_us\":%lld,\"maxrss_kb\":%ld%s%s}\n",
         r->client, r->args->version, r->args->qos, r->args->window, r->args->payload,
         r->args->count, r->messages, threads, (long long)r->t_start_ns, (long long)r->t_end_ns,
         (long long)r->cpu_us, bench_maxrss_kb(), extra[0] ? "," : "", extra);
  fflush(stdout);
}

#endif
