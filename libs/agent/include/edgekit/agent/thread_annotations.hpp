#pragma once
/// \file
/// Clang thread-safety annotations (`-Wthread-safety`), in the manner of Envoy and Abseil: they
/// name the mutex that guards each piece of shared state so the compiler checks every access.
/// They expand to nothing on compilers without the analysis (GCC), so they cost nothing there;
/// they are documentation that a Clang build verifies.

#if defined(__clang__) && !defined(SWIG)
#define EDGEKIT_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define EDGEKIT_THREAD_ANNOTATION(x)
#endif

/// A type that is a lock (os::Mutex).
#define EDGEKIT_CAPABILITY(name) EDGEKIT_THREAD_ANNOTATION(capability(name))
/// A scoped holder of a lock (os::LockGuard).
#define EDGEKIT_SCOPED_CAPABILITY EDGEKIT_THREAD_ANNOTATION(scoped_lockable)
/// The member is read and written only with `m` held.
#define EDGEKIT_GUARDED_BY(m) EDGEKIT_THREAD_ANNOTATION(guarded_by(m))
/// The pointee is read and written only with `m` held.
#define EDGEKIT_PT_GUARDED_BY(m) EDGEKIT_THREAD_ANNOTATION(pt_guarded_by(m))
/// The function must be called with `...` held.
#define EDGEKIT_REQUIRES(...) EDGEKIT_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
/// The function takes `...` (and returns with it held).
#define EDGEKIT_ACQUIRE(...) EDGEKIT_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
/// The function releases `...`.
#define EDGEKIT_RELEASE(...) EDGEKIT_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
/// The function must be called without `...` held (it takes it itself).
#define EDGEKIT_EXCLUDES(...) EDGEKIT_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
/// The analysis cannot follow this function (documented why at the use).
#define EDGEKIT_NO_THREAD_SAFETY_ANALYSIS EDGEKIT_THREAD_ANNOTATION(no_thread_safety_analysis)
