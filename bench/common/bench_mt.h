/* The 8-thread publishing harness shared by the "many threads, one connection" benchmark programs
 * (bench/agent_mt_bench.cpp, bench/peers/mosquitto_mt_bench.c, bench/peers/paho_async_bench.c).
 * Arguments: those of bench_common.h (mode `pub` only) plus THREADS:
 *
 *   <prog> pub HOST PORT 311 QOS COUNT PAYLOAD_BYTES WINDOW TOPIC THREADS
 *
 * THREADS threads publish COUNT messages in total (COUNT / THREADS each, the first ones one more
 * when it does not divide) through the program's one connection. The window is shared by all
 * threads: a thread counts a message in before each publish and the library's completion callback
 * counts it out (QoS 0: the message was written to the socket; QoS 1: its PUBACK arrived), so at
 * most WINDOW messages are queued in or in flight through the library at any time, whichever
 * library it is. A thread that finds the window full sleeps until it has drained to WINDOW / 2
 * (a low-water mark): the application refills the window in steps instead of waking a thread per
 * completion, which would cost two futex calls per message in every library alike (a first
 * version with a POSIX semaphore did exactly that; docs/benchmarks.md). The program ends when every
 * completion was seen.
 *
 * Output: one JSON line as bench_print, plus "threads" and the program's own extra fields. */
#ifndef EDGEKIT_BENCH_MT_H
#define EDGEKIT_BENCH_MT_H

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench_common.h"

struct bench_mt {
  const struct bench_args* args;
  long threads;
  /* All atomic. Sleepers wait on a futex on `generation`, which the completion that finds the
   * window drained to `low` bumps before waking them all (no mutex for the woken to fight over). */
  long outstanding; /* queued or in flight through the library */
  long low;         /* low-water mark */
  int sleepers;
  int generation;
  /* Publishes message `i` of thread `thread`; returns 0 on success. Called once the message was
   * counted into the window; the library's completion must call bench_mt_complete once per successful call. */
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

/* The library's completion callback (any thread): counts the message out of the window. */
static inline void bench_mt_complete(struct bench_mt* mt) {
  const long left = __atomic_sub_fetch(&mt->outstanding, 1, __ATOMIC_SEQ_CST);
  /* A sleeper increments `sleepers`, reads `generation`, then re-checks `outstanding` (all
   * seq_cst): either it sees this decrement and does not sleep, or this sees it and the bumped
   * generation makes its FUTEX_WAIT return at once. */
  if (left <= mt->low && __atomic_load_n(&mt->sleepers, __ATOMIC_SEQ_CST) > 0) {
    __atomic_add_fetch(&mt->generation, 1, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, &mt->generation, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
  }
}

/* Waits until at most `level` (<= low) messages are outstanding. */
static inline void bench_mt_wait_below(struct bench_mt* mt, long level) {
  __atomic_add_fetch(&mt->sleepers, 1, __ATOMIC_SEQ_CST);
  for (;;) {
    const int g = __atomic_load_n(&mt->generation, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&mt->outstanding, __ATOMIC_SEQ_CST) <= level) break;
    syscall(SYS_futex, &mt->generation, FUTEX_WAIT_PRIVATE, g, NULL, NULL, 0);
  }
  __atomic_sub_fetch(&mt->sleepers, 1, __ATOMIC_SEQ_CST);
}

/* Counts one message into the window, sleeping while it is full. */
static inline void bench_mt_acquire(struct bench_mt* mt) {
  const long window = mt->args->window;
  for (;;) {
    long o = __atomic_load_n(&mt->outstanding, __ATOMIC_SEQ_CST);
    while (o < window) {
      if (__atomic_compare_exchange_n(&mt->outstanding, &o, o + 1, 0, __ATOMIC_SEQ_CST,
                                      __ATOMIC_SEQ_CST)) {
        return;
      }
    }
    bench_mt_wait_below(mt, mt->low);
  }
}

struct bench_mt_thread {
  struct bench_mt* mt;
  long index;
  long count;
};

static void* bench_mt_thread_main(void* p) {
  struct bench_mt_thread* t = (struct bench_mt_thread*)p;
  pthread_barrier_wait(&t->mt->start);
  for (long i = 0; i < t->count && !t->mt->failed; ++i) {
    bench_mt_acquire(t->mt);
    if (t->mt->publish(t->mt->user, t->index, i) != 0) {
      bench_mt_complete(t->mt);
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
  mt->outstanding = 0;
  mt->low = mt->args->window / 2;
  mt->sleepers = 0;
  mt->generation = 0;
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
  /* Every completion arrived (the runner's timeout bounds a lost one). */
  bench_mt_wait_below(mt, 0);
  res->t_end_ns = bench_now_ns();
  res->cpu_us = bench_cpu_us() - cpu0;
  res->messages = mt->failed ? 0 : mt->args->count;
  pthread_barrier_destroy(&mt->start);
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
